"""CrossWeigh (Wang et al., EMNLP 2019): entity-disjoint cross-validation for NER labels.

Ordinary out-of-fold probabilities cannot see a *consistent* mistake: when "Nike" is labelled
GPE in a dozen sentences, the model trained on the other folds has seen the other eleven and is
confident "Nike" is GPE. CrossWeigh splits the entity *surface strings* into k folds instead;
for each fold it trains on the sentences that contain none of that fold's strings and predicts
the sentences that contain them, so every span is judged by a model that has never seen its
string. Repeating with t different splits and counting how often the prediction disagrees with
the label gives the suspicion.

Strings are the token sequences of the candidate segments (labelled spans and the spans only
the model predicts), and "contains" means the token sequence occurs anywhere in the sentence,
labelled or not, so no unlabelled occurrence leaks a string into training either. A segment is
scored only by the fold that holds its own string (its sentence may be held out by others too,
whose models may have seen its string).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .tagging import OUTSIDE, Segment, TaggedCorpus, fit_memm, span_types, tag_strings
from .tagging_baselines import CV_TOL

Surface = tuple[str, ...]


def surface(words: Sequence[Sequence[str]], seg: Segment) -> Surface:
    """The tokens a segment covers."""
    return tuple(words[seg.sentence][seg.start : seg.end])


def sentences_containing(
    words: Sequence[Sequence[str]], strings: Sequence[Surface]
) -> dict[Surface, set[int]]:
    """For every string, the sentences in which its token sequence occurs anywhere."""
    wanted = set(strings)
    lengths = {len(s) for s in wanted}
    out: dict[Surface, set[int]] = {s: set() for s in wanted}
    for i, sent in enumerate(words):
        for n in lengths:
            for j in range(len(sent) - n + 1):
                gram = tuple(sent[j : j + n])
                if gram in wanted:
                    out[gram].add(i)
    return out


@dataclass
class EntityDisjointFold:
    """One fold of one split: its strings, and the sentences held out for them (every sentence
    containing one); the model of this fold trains on all other sentences."""

    strings: list[Surface]
    held_out: np.ndarray


def entity_disjoint_folds(
    words: Sequence[Sequence[str]],
    strings: Sequence[Surface],
    folds: int,
    seed: int,
    occurrences: dict[Surface, set[int]] | None = None,
) -> list[EntityDisjointFold]:
    """Deal the distinct strings into ``folds`` folds at random (seeded) and hold out, per fold,
    the sentences containing any of its strings."""
    distinct = sorted(set(strings))
    occ = occurrences if occurrences is not None else sentences_containing(words, distinct)
    order = np.random.default_rng(seed).permutation(len(distinct))
    out = []
    for f in range(min(folds, len(distinct))):
        mine = [distinct[k] for k in order[f::folds]]
        held = sorted(set().union(*(occ[s] for s in mine)))
        out.append(EntityDisjointFold(mine, np.array(held, dtype=np.int64)))
    return out


@dataclass
class CrossWeighScores:
    """Per segment: ``disagreement``, the share of the t runs whose entity-disjoint prediction
    of its span (the type of the predicted span with exactly its boundaries, or ``O``) differs
    from its label; ``label_marginal``, the mean held-out marginal probability of its label's
    tags; ``suspicion`` = disagreement + (1 - label_marginal) / (t + 1), which orders by
    disagreement and breaks its ties (steps of 1/t) by the marginal without ever crossing a
    step."""

    disagreement: np.ndarray
    label_marginal: np.ndarray
    suspicion: np.ndarray
    runs: int


def _label_tag_ids(seg: Segment, tag_names: Sequence[str]) -> list[int]:
    index = {t: k for k, t in enumerate(tag_names)}
    n = seg.end - seg.start
    if seg.label == OUTSIDE:
        return [index[OUTSIDE]] * n
    return [index[f"B-{seg.label}"]] + [index[f"I-{seg.label}"]] * (n - 1)


def crossweigh_scores(
    corpus: TaggedCorpus,
    words: Sequence[Sequence[str]],
    segments: Sequence[Segment],
    tag_names: Sequence[str],
    *,
    l2: float,
    folds: int = 10,
    runs: int = 3,
    seed: int = 0,
    device: str | None = None,
) -> CrossWeighScores:
    """Score ``segments`` (of ``corpus``, whose words are ``words``) by ``runs`` entity-disjoint
    ``folds``-fold splits; run r uses seed ``seed + r``. Each fold trains the same MEMM head as
    the influence scores (``l2``) on the sentences left after holding out."""
    strings = [surface(words, s) for s in segments]
    occ = sentences_containing(words, strings)
    by_string: dict[Surface, list[int]] = defaultdict(list)
    for k, s in enumerate(strings):
        by_string[s].append(k)
    disagree = np.zeros(len(segments))
    marginal = np.zeros(len(segments))
    every = np.arange(corpus.n_sentences)
    for r in range(runs):
        for fold in entity_disjoint_folds(words, strings, folds, seed + r, occ):
            train = np.setdiff1d(every, fold.held_out)
            part = TaggedCorpus([corpus.vectors[i] for i in train], [corpus.tags[i] for i in train])
            head = fit_memm(part, len(tag_names), l2=l2, device=device, tol=CV_TOL)
            mine = [k for s in fold.strings for k in by_string[s]]
            sentences = sorted({segments[k].sentence for k in mine})
            vectors = [corpus.vectors[i] for i in sentences]
            pred = dict(zip(sentences, tag_strings(head.predict(vectors), tag_names), strict=True))
            probs = dict(zip(sentences, map(head.marginals, vectors), strict=True))
            for k in mine:
                seg = segments[k]
                local = Segment(0, seg.start, seg.end, seg.label)
                (typ,), _ = span_types([local], [pred[seg.sentence]])
                disagree[k] += typ != seg.label
                rows = np.arange(seg.start, seg.end)
                marginal[k] += probs[seg.sentence][rows, _label_tag_ids(seg, tag_names)].mean()
    disagree /= runs
    marginal /= runs
    return CrossWeighScores(disagree, marginal, disagree + (1 - marginal) / (runs + 1), runs)
