"""Sequence tagging on frozen token vectors: a maximum-entropy Markov model (MEMM) head.

Each token's tag is a multinomial logistic regression over the features
``phi = [x (d), onehot(previous tag) (T+1; index T is the sentence start)]`` plus a bias, so
transition preferences are weights like any other. Training uses teacher forcing: the previous
tag in the features is the *labelled* one, as an MEMM is trained. The objective

    J(theta) = (1/N) Σ_i w_i CE_i(theta) + (l2/2) ||theta||²      (N = all training tokens)

is strictly convex and a sum over tokens; it is solved to its optimum in float64 by the
classification head's solver (``head.fit_logistic_head``). That is what makes segment influence
(``segment_influence.py``) exact: a segment's loss is a sum of token losses, and "trained
without a segment" is exactly w_i = 0 on its tokens with N unchanged.

Decoding is Viterbi over log p(tag_j | x_j, tag_{j-1}). Because an MEMM is locally normalised,
the forward recursion alone gives the token marginals p(tag_j | sentence) (no backward pass):
the probabilities the cleanlab baseline gets, since they do not lean on the given labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import log_softmax

from .head import LogisticHead, fit_logistic_head

OUTSIDE = "O"


@dataclass
class TaggedCorpus:
    """Sentences as token vectors (n_i, d) with tag ids (n_i,) in [0, T).

    The flat arrays (``X``, ``y``, ``offsets``) index tokens of all sentences in order, the
    layout the head trains on; ``token_range`` maps a sentence span into it.
    """

    vectors: Sequence[np.ndarray]
    tags: Sequence[np.ndarray]

    def __post_init__(self) -> None:
        if len(self.vectors) != len(self.tags):
            raise ValueError(f"{len(self.vectors)} sentences of vectors, {len(self.tags)} of tags")
        for i, (v, t) in enumerate(zip(self.vectors, self.tags, strict=True)):
            if len(v) != len(t):
                raise ValueError(f"sentence {i}: {len(v)} token vectors but {len(t)} tags")

    @property
    def n_sentences(self) -> int:
        return len(self.tags)

    @cached_property
    def offsets(self) -> np.ndarray:
        """(n_sentences + 1,) start of each sentence in the flat token arrays."""
        return np.concatenate([[0], np.cumsum([len(t) for t in self.tags])]).astype(np.int64)

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    @cached_property
    def X(self) -> np.ndarray:
        return np.concatenate([np.asarray(v, dtype=np.float64) for v in self.vectors])

    @cached_property
    def y(self) -> np.ndarray:
        return np.concatenate([np.asarray(t, dtype=np.int64) for t in self.tags])

    def previous(self, start_symbol: int) -> np.ndarray:
        """Labelled tag before every token, ``start_symbol`` at a sentence start (teacher
        forcing)."""
        prev = np.roll(self.y, 1)
        prev[self.offsets[:-1][np.diff(self.offsets) > 0]] = start_symbol
        return prev

    def token_range(self, sentence: int, start: int, end: int) -> np.ndarray:
        """Flat token indices of ``[start, end)`` in ``sentence``."""
        n = len(self.tags[sentence])
        if not 0 <= start < end <= n:
            raise ValueError(f"span [{start}, {end}) outside sentence {sentence} of {n} tokens")
        base = int(self.offsets[sentence])
        return np.arange(base + start, base + end)


def memm_features(X: np.ndarray, prev: np.ndarray, n_tags: int) -> np.ndarray:
    """[x, onehot(prev)] (n, d + T + 1) in float64; ``prev == n_tags`` is the sentence start."""
    onehot = np.zeros((len(prev), n_tags + 1))
    onehot[np.arange(len(prev)), prev] = 1.0
    return np.concatenate([np.asarray(X, dtype=np.float64), onehot], axis=1)


@dataclass
class MEMMHead:
    """p(tag_j | x_j, tag_{j-1}) = softmax(W [x_j, onehot(tag_{j-1})] + b): a ``LogisticHead``
    with T classes over d + T + 1 features. ``start`` (= T) is the previous tag of a first
    token."""

    head: LogisticHead

    @property
    def n_tags(self) -> int:
        return self.head.n_classes

    @property
    def start(self) -> int:
        return self.n_tags

    def transition_log_probs(self, X: np.ndarray) -> np.ndarray:
        """log p(tag | x_j, previous = r) for every token j and every r: (n, T+1, T)."""
        T = self.n_tags
        d = self.head.weight.shape[1] - T - 1
        emit = np.asarray(X, dtype=np.float64) @ self.head.weight[:, :d].T + self.head.bias
        # weight[c, d + r] is the score of tag c after previous tag r
        return log_softmax(emit[:, None, :] + self.head.weight[:, d:].T[None], axis=2)

    def token_log_probs(self, corpus: TaggedCorpus) -> np.ndarray:
        """log p(· | x_i, labelled previous tag) (N, T) for every token: teacher-forced."""
        F = memm_features(corpus.X, corpus.previous(self.start), self.n_tags)
        return log_softmax(self.head.logits(F), axis=1)

    def token_losses(self, corpus: TaggedCorpus) -> np.ndarray:
        """Cross-entropy of every labelled tag given the labelled previous tag (N,)."""
        return -self.token_log_probs(corpus)[np.arange(corpus.n_tokens), corpus.y]

    def viterbi(self, X: np.ndarray) -> np.ndarray:
        """The most probable tag sequence of one sentence, ``argmax Π_j p(t_j | x_j, t_{j-1})``."""
        L = self.transition_log_probs(X)
        n = len(L)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        best = L[0, self.start]
        back = np.zeros((n, self.n_tags), dtype=np.int64)
        for j in range(1, n):
            scores = best[:, None] + L[j, : self.n_tags]  # (previous, current)
            back[j] = scores.argmax(axis=0)
            best = scores.max(axis=0)
        path = np.empty(n, dtype=np.int64)
        path[-1] = int(best.argmax())
        for j in range(n - 1, 0, -1):
            path[j - 1] = back[j, path[j]]
        return path

    def marginals(self, X: np.ndarray) -> np.ndarray:
        """p(tag_j | sentence) (n, T) by the forward recursion (enough for a local model)."""
        P = np.exp(self.transition_log_probs(X))
        out = np.empty((len(P), self.n_tags))
        if len(P):
            out[0] = P[0, self.start]
        for j in range(1, len(P)):
            out[j] = out[j - 1] @ P[j, : self.n_tags]
        return out

    def predict(self, vectors: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Viterbi tag ids of every sentence."""
        return [self.viterbi(v) for v in vectors]


def fit_memm(
    corpus: TaggedCorpus,
    n_tags: int,
    *,
    l2: float,
    token_weight: np.ndarray | None = None,
    init: MEMMHead | None = None,
    device: str | None = None,
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> MEMMHead:
    """Minimise the module docstring's J(theta); ``token_weight`` (N,) defaults to ones.

    ``fit_logistic_head`` divides by Σ w rather than N, so l2 is scaled by N / Σ w: the same
    minimiser, so that removing tokens (weight 0) leaves the regulariser's strength unchanged.
    ``init`` warm-starts the solver (retraining without a segment takes few steps).
    """
    F = memm_features(corpus.X, corpus.previous(n_tags), n_tags)
    w = np.ones(corpus.n_tokens) if token_weight is None else np.asarray(token_weight, float)
    head = fit_logistic_head(
        F,
        corpus.y,
        n_tags,
        l2=l2 * corpus.n_tokens / w.sum(),
        sample_weight=w,
        device=device,
        tol=tol,
        max_iter=max_iter,
        init=None if init is None else init.head,
    )
    return MEMMHead(head)


# ---- BIO tags and candidate segments ----------------------------------------------------


@dataclass(frozen=True, order=True)
class Segment:
    """Tokens ``[start, end)`` of sentence ``sentence``; ``label`` is the span's entity type in
    the training labels, or ``O`` for a span only the model predicts."""

    sentence: int
    start: int
    end: int
    label: str


def bio_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Entity spans (start, end exclusive, type) of one sentence's BIO (IOB2) tags.

    ``I-X`` that does not continue an ``X`` span starts one, as seqeval's default mode reads
    IOB2, so a broken label still yields a span a reviewer can see.
    """
    spans: list[tuple[int, int, str]] = []
    current: tuple[int, str] | None = None
    for j, tag in enumerate([*tags, OUTSIDE]):
        if tag == OUTSIDE:
            kind, typ = OUTSIDE, None
        elif tag[:2] in ("B-", "I-") and len(tag) > 2:
            kind, typ = tag[0], tag[2:]
        else:
            raise ValueError(f"token {j}: tag {tag!r} is neither O nor B-/I-<type>")
        if current is not None and (kind != "I" or typ != current[1]):
            spans.append((current[0], j, current[1]))
            current = None
        if kind in ("B", "I") and current is None:
            current = (j, typ)
    return spans


def candidate_segments(
    tags_true: Sequence[Sequence[str]], tags_pred: Sequence[Sequence[str]]
) -> list[Segment]:
    """Every labelled span, plus every predicted span whose boundaries no labelled span has.

    The second kind (label ``O``) lets missed entities reach the queue; a predicted span with a
    labelled span's boundaries but another type adds nothing, as the labelled one is already a
    candidate. Sorted by sentence, then position.
    """
    if len(tags_true) != len(tags_pred):
        raise ValueError(f"{len(tags_true)} labelled sentences, {len(tags_pred)} predicted")
    out: list[Segment] = []
    for i, (true, pred) in enumerate(zip(tags_true, tags_pred, strict=True)):
        labelled = bio_spans(true)
        bounds = {(s, e) for s, e, _ in labelled}
        out += [Segment(i, s, e, typ) for s, e, typ in labelled]
        out += [Segment(i, s, e, OUTSIDE) for s, e, _ in bio_spans(pred) if (s, e) not in bounds]
    return sorted(out)


def tag_ids(tags: Sequence[Sequence[str]], tag_names: Sequence[str]) -> list[np.ndarray]:
    """String tags to ids in ``tag_names``, sentence by sentence."""
    index = {t: k for k, t in enumerate(tag_names)}
    try:
        return [np.array([index[t] for t in sent], dtype=np.int64) for sent in tags]
    except KeyError as exc:
        raise ValueError(f"tag {exc.args[0]!r} is not in the tag set") from None


def tag_strings(ids: Sequence[np.ndarray], tag_names: Sequence[str]) -> list[list[str]]:
    """Tag ids back to strings, sentence by sentence."""
    return [[tag_names[int(k)] for k in sent] for sent in ids]


def span_types(segments: Sequence[Segment], tags: Sequence[Sequence[str]]) -> tuple[list, list]:
    """Per segment, the type of the span in ``tags`` with exactly its boundaries (or ``O``), and
    a suggestion: that type, else the type most of its tokens carry in ``tags`` (``O`` counts;
    ties go to the earliest token's).

    Given predicted tags, the first is what the model predicts for the span and the second what
    a reviewer is offered: the model's type, or removal when it predicts ``O`` there.
    """
    exact = [{(s, e): typ for s, e, typ in bio_spans(sent)} for sent in tags]
    predicted, suggested = [], []
    for seg in segments:
        typ = exact[seg.sentence].get((seg.start, seg.end), OUTSIDE)
        predicted.append(typ)
        if typ != OUTSIDE:
            suggested.append(typ)
            continue
        kinds = [t if t == OUTSIDE else t[2:] for t in tags[seg.sentence][seg.start : seg.end]]
        suggested.append(max(dict.fromkeys(kinds), key=kinds.count))
    return predicted, suggested
