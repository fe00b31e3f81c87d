"""Scoring in row shards: one fit that every shard shares, per-row scores as pure functions.

A large training set is scored by several workers at once: the texts are embedded in slices,
the exact head is fitted once, and each shard computes the scores of its own training rows
(loss, self-influence, dev influence, supporters and opposers, InfFeed's suggestion) from the
shared ``FittedState``. Every row's numbers depend only on that state and the row, so the
merged shards are what one ``score_training_set`` call gives (tests/test_sharded_scoring.py).
Only ``exact_head`` is sharded (with the ``noise_check`` policy on top of it, applied to the
merged rows): the other estimators' fits are where their time goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .choice import NOISE_CHECK
from .estimators import ExactHeadInfluence, TopK
from .head import LogisticHead
from .inffeed import AdjustmentSelection, Suggestions, suggest_labels
from .scoring import ScoreResult, influence_targets, rank_descending
from .suggestions import choose_adjustment

SHARDED_ESTIMATORS = frozenset({ExactHeadInfluence.name, NOISE_CHECK})


def embedding_shards(texts: Sequence[str], batch_size: int, rows: int) -> list[np.ndarray]:
    """Index arrays over ``texts`` whose embeddings equal one ``embed_texts`` call's.

    ``embed_texts`` batches texts in length order. A shard that is a run of that order, of a
    multiple of ``batch_size`` texts and passed in that order, sees the very same batches (the
    same padding, so the same numbers); ``rows`` is rounded up to such a multiple.
    """
    order = np.argsort([len(t) for t in texts], kind="stable")
    size = max(1, -(-rows // batch_size)) * batch_size
    return [order[start : start + size] for start in range(0, len(order), size)]


def row_shards(n: int, rows: int) -> list[slice]:
    """Consecutive training rows, ``rows`` at a time."""
    return [slice(start, min(start + rows, n)) for start in range(0, n, max(rows, 1))]


@dataclass
class FittedState:
    """What every scoring shard shares: the trained head, the Cholesky factor of its (damped)
    Hessian, InfFeed's adjustment chosen on the gold dev set (None without one), and whether the
    served head's biases are re-fitted on that dev set (a default, so that a state pickled
    before calibration existed still loads)."""

    weight: np.ndarray
    bias: np.ndarray
    l2: float
    factor: np.ndarray
    diagnostics: dict[str, float]
    adjustment: AdjustmentSelection | None
    calibrated: bool = False


def fit_state(
    X_train: np.ndarray,
    y_train: np.ndarray,
    n_classes: int,
    *,
    l2: float,
    X_dev: np.ndarray | None = None,
    y_dev: np.ndarray | None = None,
    calibrate: bool = False,
    device: str | None = None,
) -> FittedState:
    """Fit the head once, factorise its Hessian, with a dev set calibrate its biases there
    (if ``calibrate``) and choose the InfFeed adjustment."""
    y_train = np.asarray(y_train, dtype=np.int64)
    inf = ExactHeadInfluence.fit(X_train, y_train, n_classes, l2=l2, device=device)
    adjustment = None
    if X_dev is not None and y_dev is not None and len(X_dev):
        y_dev = np.asarray(y_dev, dtype=np.int64)
        if calibrate:
            inf = inf.calibrated(X_dev, y_dev)
        adjustment = choose_adjustment(inf, y_train, X_dev, y_dev)
    return FittedState(
        inf.trained.weight,
        inf.trained.bias,
        float(l2),
        inf.cholesky_factor(),
        dict(inf.diagnostics),
        adjustment,
        inf.is_calibrated,
    )


def restore(
    state: FittedState,
    X_train: np.ndarray,
    y_train: np.ndarray,
    device: str | None = None,
    X_dev: np.ndarray | None = None,
    y_dev: np.ndarray | None = None,
) -> ExactHeadInfluence:
    """The fitted estimator again, in any process, without refitting or refactorising (the
    dev set is needed when the state was calibrated on it; the re-fit is deterministic)."""
    if state.calibrated and (X_dev is None or y_dev is None):
        raise ValueError("this state was calibrated on a dev set: pass X_dev and y_dev")
    return ExactHeadInfluence(
        LogisticHead(state.weight, state.bias),
        X_train,
        np.asarray(y_train, dtype=np.int64),
        l2=state.l2,
        device=device,
        factor=state.factor,
        diagnostics=state.diagnostics,
        calibrate_on=(X_dev, np.asarray(y_dev, dtype=np.int64)) if state.calibrated else None,
    )


@dataclass
class RowScores:
    """One shard's results for training rows ``start`` .. ``start + len(loss)``."""

    start: int
    probs: np.ndarray
    loss: np.ndarray
    self_influence: np.ndarray
    dev_influence: np.ndarray | None
    top: TopK
    suggestions: Suggestions | None


def score_rows(
    inf: ExactHeadInfluence,
    X_train: np.ndarray,
    y_train: np.ndarray,
    rows: slice,
    *,
    k: int,
    X_dev: np.ndarray | None = None,
    y_dev: np.ndarray | None = None,
    gold_rows: np.ndarray | None = None,
    adjustment: AdjustmentSelection | None = None,
) -> RowScores:
    """Everything ``score_training_set`` and InfFeed compute per training row, for ``rows``."""
    y_train = np.asarray(y_train, dtype=np.int64)
    own = np.arange(len(y_train))[rows]
    X, y = X_train[rows], y_train[rows]
    dev = None
    if X_dev is not None and y_dev is not None and len(X_dev):
        X_t, y_t = influence_targets(X_dev, y_dev, X_train, y_train, gold_rows)
        dev = inf.dev_influence(X_t, y_t, rows)
    suggestions = None
    if adjustment is not None:
        suggestions = suggest_labels(inf, X, y_train, adjustment.config, own)
    return RowScores(
        start=int(own[0]) if len(own) else 0,
        probs=inf.model.predict_proba(X),
        loss=inf.model.log_loss(X, y),
        self_influence=inf.self_influence(rows),
        dev_influence=dev,
        top=inf.top_k(X, y, k, exclude_self=own),
        suggestions=suggestions,
    )


def _stack(parts: Sequence[object], field: str) -> np.ndarray:
    return np.concatenate([getattr(part, field) for part in parts])


def merge_rows(
    parts: Sequence[RowScores], inf: ExactHeadInfluence
) -> tuple[ScoreResult, Suggestions | None]:
    """The shards' rows in order, as the ``ScoreResult`` (and training suggestions) of one
    unsharded run: suspicion and ranks need every row, so they are computed here."""
    parts = sorted(parts, key=lambda part: part.start)
    expected = 0
    for part in parts:
        if part.start != expected:
            raise ValueError(f"shard rows start at {part.start}, expected {expected}")
        expected += len(part.loss)
    if expected != inf.n:
        raise ValueError(f"shards hold {expected} rows, the training set {inf.n}")
    probs = _stack(parts, "probs")
    self_inf = _stack(parts, "self_influence")
    dev = None if parts[0].dev_influence is None else _stack(parts, "dev_influence")
    suspicion = -dev if dev is not None else self_inf.copy()
    tops = [part.top for part in parts]
    top = TopK(*(_stack(tops, f) for f in TopK.__dataclass_fields__))
    suggestions = None
    if parts[0].suggestions is not None:
        found = [part.suggestions for part in parts]
        suggestions = Suggestions(*(_stack(found, f) for f in Suggestions.__dataclass_fields__))
    result = ScoreResult(
        probs=probs,
        predicted=probs.argmax(axis=1),
        loss=_stack(parts, "loss"),
        self_influence=self_inf,
        dev_influence=dev,
        suspicion=suspicion,
        rank=rank_descending(suspicion),
        top=top,
        l2=inf.l2,
        head=inf.model,
        estimator=ExactHeadInfluence.name,
        diagnostics=dict(inf.diagnostics),
        influence=inf,
    )
    return result, suggestions
