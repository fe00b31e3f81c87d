"""InfFeed (Banerjee et al., 2024): influence functions as feedback, on the frozen-embedding head.

Objective 1, label adjustment. A target item's gold label is unknown, so influence is taken at
its *predicted* label: its top-k proponents are the training items whose removal would most
raise the loss of that prediction (largest positive influence). Where the model is unsure
(max probability below a threshold) the target's label becomes the vote of its proponents'
training labels, uniform or weighted by influence. k, the weighting and the threshold are
chosen on a gold dev set only; threshold 0 switches adjustment off, so the choice can always
fall back to the plain model.

Objective 2, extension triage. A silver-labelled extension is added to gold training data; the
items whose dev influence is negative (removing them would lower the gold loss: of the dev set
and of the training items whose label is gold) are the ones to re-annotate, most harmful
first: that is the product's queue order. ``prune_by_ranker`` also leaves out of training the
most suspicious items that were not re-annotated, with the amount chosen on dev. The
re-annotation simulation that compares rankers against known gold labels is benchmark code
(``bench/triage_sim.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.metrics import f1_score

from .calibration import fit_served_head
from .estimators import FittableEstimator, TopK

Weighting = Literal["uniform", "influence"]
# Ranker(X, y_current, reviewed_mask) -> suspicion (n,), higher = re-annotate first.
Ranker = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

DEFAULT_K_GRID = (1, 3, 5, 10, 25, 50)
DEFAULT_THRESHOLDS = (0.0, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
# 1.0 leaves every candidate out: the "do not trust the silver labels at all" option.
DEFAULT_DROP_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro-F1, the metric InfFeed reports and every choice here is made on."""
    return float(f1_score(y_true, y_pred, average="macro"))


# ---- objective 1: label adjustment --------------------------------------------------------


@dataclass(frozen=True)
class AdjustConfig:
    """Use the top ``k`` proponents, voting ``weighting``-wise, where max prob < ``threshold``."""

    k: int
    weighting: Weighting
    threshold: float


def proponents(
    estimator: FittableEstimator, X_t: np.ndarray, k: int, exclude_self: np.ndarray | None = None
) -> TopK:
    """Top-k training items supporting each target's predicted label (gold is unknown there).

    ``exclude_self[t]`` is target t's own training row (or -1): a training item never votes
    for itself."""
    predicted = estimator.model.predict_proba(X_t).argmax(axis=1)
    return estimator.top_k(X_t, predicted, k, exclude_self=exclude_self)


def adjust_labels(
    probs_t: np.ndarray,
    influencer_idx: np.ndarray,
    influencer_val: np.ndarray,
    y_train: np.ndarray,
    *,
    k: int,
    weighting: Weighting,
    threshold: float,
) -> np.ndarray:
    """Predicted labels, replaced by the influencers' vote where the model is unsure.

    ``influencer_idx``/``influencer_val`` (m, >= k) are each target's proponents sorted by
    descending influence (``TopK.supporters_*``); only the first k and only positive influence
    count (a non-positive entry is no proponent). Ties and empty votes keep the prediction.
    """
    probs_t = np.asarray(probs_t, dtype=np.float64)
    m, n_classes = probs_t.shape
    predicted = probs_t.argmax(axis=1)
    idx = np.asarray(influencer_idx)[:, :k]
    val = np.asarray(influencer_val, dtype=np.float64)[:, :k]
    if weighting == "influence":
        w = np.clip(val, 0.0, None)
    elif weighting == "uniform":
        w = (val > 0).astype(np.float64)
    else:
        raise ValueError(f"unknown weighting '{weighting}'")
    votes = np.zeros((m, n_classes))
    rows = np.repeat(np.arange(m), idx.shape[1])
    np.add.at(votes, (rows, np.asarray(y_train)[idx].ravel()), w.ravel())
    keep = votes[np.arange(m), predicted] >= votes.max(axis=1)
    voted = np.where(keep, predicted, votes.argmax(axis=1))
    return np.where(probs_t.max(axis=1) < threshold, voted, predicted)


@dataclass
class AdjustmentSelection:
    """The config with the best dev macro-F1 and every config's dev macro-F1.

    ``dev_f1_before`` is the unadjusted model's; ties go to the earlier config in the search
    order (no adjustment first, then lower thresholds and smaller k), so adjustment is used
    only where it strictly helps on dev.
    """

    config: AdjustConfig
    dev_f1_before: float
    dev_f1_after: float
    results: list[tuple[AdjustConfig, float]]


def feasible_k_grid(k_grid: Sequence[int], n_proponents: int) -> tuple[int, ...]:
    """The ks worth trying when each target has ``n_proponents`` (sorted, distinct).

    Why: there are never more proponents than training items, and a small project (20 items,
    below the grid's 25) is a normal first try; a k above that count would vote with the same
    items as k = ``n_proponents``, so it is clipped to it rather than refused. On data with at
    least ``max(k_grid)`` training items the grid is unchanged.
    """
    if n_proponents < 1:
        raise ValueError("no proponents to vote with: the training set is empty")
    if not k_grid or min(k_grid) < 1:
        raise ValueError(f"k_grid must hold positive sizes, got {tuple(k_grid)}")
    return tuple(sorted({min(int(k), n_proponents) for k in k_grid}))


def select_adjustment(
    probs_dev: np.ndarray,
    influencers_dev: TopK,
    y_train: np.ndarray,
    y_dev: np.ndarray,
    *,
    k_grid: Sequence[int] = DEFAULT_K_GRID,
    weightings: Sequence[Weighting] = ("uniform", "influence"),
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> AdjustmentSelection:
    """Grid-search k x weighting x threshold on the gold dev set (never on test).

    ``influencers_dev`` holds each dev item's proponents, ``max(k_grid)`` of them or, with
    fewer training items, all there are; the grid is clipped to that (``feasible_k_grid``).
    """
    ks = feasible_k_grid(k_grid, influencers_dev.supporters_idx.shape[1])
    off = AdjustConfig(k=ks[0], weighting=weightings[0], threshold=0.0)
    before = macro_f1(y_dev, np.asarray(probs_dev).argmax(axis=1))
    best, best_f1 = off, before
    results = [(off, before)]
    for threshold in sorted(t for t in thresholds if t > 0):
        for k in ks:
            for weighting in weightings:
                cfg = AdjustConfig(k=k, weighting=weighting, threshold=threshold)
                labels = adjust_labels(
                    probs_dev,
                    influencers_dev.supporters_idx,
                    influencers_dev.supporters_val,
                    y_train,
                    k=k,
                    weighting=weighting,
                    threshold=threshold,
                )
                f = macro_f1(y_dev, labels)
                results.append((cfg, f))
                if f > best_f1:
                    best, best_f1 = cfg, f
    return AdjustmentSelection(best, before, best_f1, results)


@dataclass
class Suggestions:
    """Per target: the model's prediction and confidence, the suggested label, whether it was
    adjusted, the prediction's proponents that voted (``influencer_*``, (m, k)), and the
    suggestion's own supporters (``reason_*``, (m, k)): what is shown as its reasons.

    Why both: where the vote changed the label, the voters support the *prediction* (InfFeed
    votes with their training labels), so in a two-label project they are exactly the
    opposers of the suggested label; shown as the suggestion's reasons, an item appeared as an
    opposer of a label and as the top reason for suggesting that same label. The reasons are
    taken at the suggested label instead (the voters where the suggestion is the prediction)."""

    predicted: np.ndarray
    confidence: np.ndarray
    label: np.ndarray
    adjusted: np.ndarray
    influencer_idx: np.ndarray
    influencer_val: np.ndarray
    reason_idx: np.ndarray
    reason_val: np.ndarray


def suggest_labels(
    estimator: FittableEstimator,
    X_t: np.ndarray,
    y_train: np.ndarray,
    config: AdjustConfig,
    exclude_self: np.ndarray | None = None,
) -> Suggestions:
    """Apply a dev-chosen ``config`` to targets (test, unlabelled, or training items with
    ``exclude_self``), with the evidence."""
    probs = estimator.model.predict_proba(X_t)
    top = proponents(estimator, X_t, config.k, exclude_self)
    label = adjust_labels(
        probs,
        top.supporters_idx,
        top.supporters_val,
        y_train,
        k=config.k,
        weighting=config.weighting,
        threshold=config.threshold,
    )
    predicted = probs.argmax(axis=1)
    adjusted = label != predicted
    reason_idx, reason_val = top.supporters_idx.copy(), top.supporters_val.copy()
    rows = np.nonzero(adjusted)[0]
    if len(rows):
        own = None if exclude_self is None else np.asarray(exclude_self)[rows]
        theirs = estimator.top_k(X_t[rows], label[rows], config.k, exclude_self=own)
        reason_idx[rows], reason_val[rows] = theirs.supporters_idx, theirs.supporters_val
    return Suggestions(
        predicted=predicted,
        confidence=probs.max(axis=1),
        label=label,
        adjusted=adjusted,
        influencer_idx=top.supporters_idx,
        influencer_val=top.supporters_val,
        reason_idx=reason_idx,
        reason_val=reason_val,
    )


# ---- leaving suspicious items out of training ---------------------------------------------


def most_suspicious(suspicion: np.ndarray, eligible_mask: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` most suspicious eligible items, most suspicious first."""
    eligible = np.nonzero(np.asarray(eligible_mask, dtype=bool))[0]
    return eligible[np.argsort(-np.asarray(suspicion)[eligible], kind="stable")[: max(count, 0)]]


def served_f1(
    X: np.ndarray,
    y: np.ndarray,
    X_dev: np.ndarray,
    y_dev: np.ndarray,
    n_classes: int,
    l2: float,
    sample_weight: np.ndarray | None = None,
    device: str | None = None,
    calibrate: bool = False,
) -> float:
    """Dev macro-F1 of the head trained on (X, y) and served as the product serves it
    (``calibrate``: biases re-fitted on dev)."""
    head = fit_served_head(
        X,
        y,
        n_classes,
        l2=l2,
        sample_weight=sample_weight,
        calibrate_on=(X_dev, y_dev) if calibrate else None,
        device=device,
    )
    return macro_f1(y_dev, head.predict_proba(X_dev).argmax(axis=1))


@dataclass
class PruneResult:
    """Training weights (0 = left out), the left-out indices, the chosen fraction of the
    candidates, and dev macro-F1 for every fraction tried."""

    weights: np.ndarray
    dropped: np.ndarray
    fraction: float
    dev_f1: dict[float, float]


def prune_by_ranker(
    X: np.ndarray,
    y: np.ndarray,
    candidate_mask: np.ndarray,
    X_dev: np.ndarray,
    y_dev: np.ndarray,
    *,
    ranker: Ranker,
    l2: float,
    n_classes: int,
    reviewed_mask: np.ndarray | None = None,
    fractions: Sequence[float] = DEFAULT_DROP_FRACTIONS,
    calibrate: bool = False,
    device: str | None = None,
) -> PruneResult:
    """Leave the most suspicious candidates (e.g. unreviewed silver items) out of training.

    Leaving an item out costs no annotation; how many to leave out is chosen by dev macro-F1
    over ``fractions`` of the candidates (0 included, so pruning is used only if it helps on
    dev; ties go to the smaller fraction), of heads served as trained or, with ``calibrate``,
    with their biases re-fitted on dev.
    """
    cand = np.nonzero(np.asarray(candidate_mask, dtype=bool))[0]
    reviewed = np.zeros(len(y), bool) if reviewed_mask is None else np.asarray(reviewed_mask)
    suspicion = np.asarray(ranker(X, y, reviewed), dtype=np.float64)
    order = most_suspicious(suspicion, candidate_mask, len(cand))
    dev_f1: dict[float, float] = {}
    best: tuple[float, float, np.ndarray] | None = None
    for frac in sorted(set(fractions) | {0.0}):
        w = np.ones(len(y))
        w[order[: round(frac * len(cand))]] = 0.0
        dev_f1[float(frac)] = served_f1(X, y, X_dev, y_dev, n_classes, l2, w, device, calibrate)
        if best is None or dev_f1[float(frac)] > best[1]:
            best = (float(frac), dev_f1[float(frac)], w)
    assert best is not None
    frac, _, w = best
    return PruneResult(w, np.nonzero(w == 0)[0], frac, dev_f1)
