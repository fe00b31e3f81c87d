"""Baselines for suspicious segments, the rankers segment influence must beat.

Each maps a training corpus and its candidate segments to a suspicion per segment (higher =
more likely mislabelled), like ``segment_influence.score_segments``'s, so a benchmark can put
them side by side. CrossWeigh's entity-disjoint folds are in ``crossweigh``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from cleanlab.token_classification.rank import get_label_quality_scores

from .segment_influence import segment_losses
from .tagging import MEMMHead, Segment, TaggedCorpus, fit_memm

# Cross-validation fits only need probabilities, not the exact optimum influence needs.
CV_TOL = 1e-7


def sentence_folds(n_sentences: int, folds: int, seed: int) -> np.ndarray:
    """Fold id per sentence: a shuffled deal into ``folds`` folds (fewer on tiny data)."""
    if n_sentences < 2:
        raise ValueError(f"out-of-fold probabilities need at least 2 sentences, got {n_sentences}")
    fold = np.empty(n_sentences, dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(n_sentences)] = np.arange(n_sentences) % min(
        folds, n_sentences
    )
    return fold


def out_of_fold_marginals(
    corpus: TaggedCorpus,
    n_tags: int,
    *,
    l2: float,
    folds: int = 5,
    seed: int = 0,
    device: str | None = None,
) -> list[np.ndarray]:
    """Per sentence, token marginals p(tag_j | sentence) (n_i, T) from the same MEMM head
    trained on the other folds of sentences.

    Marginals, not probabilities given the labelled previous tag: those would lean on the very
    labels under test (after a wrong ``B-GPE`` an ``I-GPE`` looks right).
    """
    fold = sentence_folds(corpus.n_sentences, folds, seed)
    out: list[np.ndarray] = [np.empty(0)] * corpus.n_sentences
    for f in np.unique(fold):
        rest = np.nonzero(fold != f)[0]
        part = TaggedCorpus([corpus.vectors[i] for i in rest], [corpus.tags[i] for i in rest])
        head = fit_memm(part, n_tags, l2=l2, device=device, tol=CV_TOL)
        for i in np.nonzero(fold == f)[0]:
            out[i] = head.marginals(corpus.vectors[i])
    return out


def cleanlab_segment_scores(
    corpus: TaggedCorpus,
    segments: Sequence[Segment],
    pred_probs: Sequence[np.ndarray],
) -> np.ndarray:
    """cleanlab's token label quality (``token_classification.rank``, self-confidence), from
    out-of-fold ``pred_probs``; a segment's suspicion is 1 - its worst token's quality, the
    same ``min`` cleanlab uses to score a sentence."""
    labels = [np.asarray(t, dtype=np.int64).tolist() for t in corpus.tags]
    _, token_scores = get_label_quality_scores(labels, list(pred_probs))
    quality = [np.asarray(s, dtype=np.float64) for s in token_scores]
    return np.array([1.0 - quality[s.sentence][s.start : s.end].min() for s in segments])


def token_loss_segment_scores(
    head: MEMMHead, corpus: TaggedCorpus, segments: Sequence[Segment]
) -> np.ndarray:
    """The segment's loss under the head trained on everything (the classic small-loss
    criterion, per Jain et al.'s token loss scorer summed over the span)."""
    return segment_losses(head, corpus, segments)


def random_segment_scores(n_segments: int, seed: int = 0) -> np.ndarray:
    """Uniform random suspicion: the floor every ranking must clear."""
    return np.random.default_rng(seed).random(n_segments)
