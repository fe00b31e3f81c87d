"""Non-influence rankers of suspicious labels, the baselines Assay's ranking must beat.

Each ranker maps arrays to a suspicion array (higher = more likely mislabelled), in the spirit
of cleanlab's ``find_label_issues``, so benchmarks can plug any of them into the same triage.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from cleanlab.rank import get_label_quality_scores
from sklearn.model_selection import StratifiedKFold

from .head import fit_logistic_head

# l2 of the head's objective (mean CE + l2/2 ||[W|b]||²); sklearn's C is about 1 / (l2 · n).
DEFAULT_L2_GRID = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
CLEANLAB_METHOD = "self_confidence"  # cleanlab's label-quality score, on every model
# Cross-validation fits only need probabilities, not the exact optimum influence needs.
_CV_TOL = 1e-7


def _label_probs(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.asarray(probs, dtype=np.float64)[np.arange(len(y)), np.asarray(y, dtype=np.int64)]


def loss_scores(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cross-entropy of the given label, -log p(y|x): the classic small-loss criterion."""
    return -np.log(np.clip(_label_probs(probs, y), np.finfo(np.float64).tiny, None))


def margin_scores(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """max_{k != y} p_k - p_y, in [-1, 1]: cleanlab's normalized margin, negated.

    Positive exactly when the model prefers another class to the given label.
    """
    p = np.array(probs, dtype=np.float64, copy=True)
    y = np.asarray(y, dtype=np.int64)
    own = p[np.arange(len(y)), y].copy()
    p[np.arange(len(y)), y] = -np.inf
    return p.max(axis=1) - own


@dataclass
class CleanlabResult:
    """cleanlab's suspicion and what was chosen on the way, for reports.

    ``pred_probs`` are out-of-fold probabilities at the chosen ``l2``; ``fold[i]`` is the fold
    item i was held out in (its probabilities come from a head that never saw that fold).
    ``cv_log_loss`` maps every l2 tried to its out-of-fold mean log-loss.
    """

    suspicion: np.ndarray
    pred_probs: np.ndarray
    fold: np.ndarray
    l2: float
    method: str
    cv_log_loss: dict[float, float]


def out_of_fold_probs(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    fold: np.ndarray,
    *,
    l2: float,
    device: str | None = None,
) -> np.ndarray:
    """Probabilities for every item from the head trained on all other folds."""
    probs = np.empty((len(y), n_classes), dtype=np.float64)
    for f in np.unique(fold):
        held = fold == f
        head = fit_logistic_head(X[~held], y[~held], n_classes, l2=l2, device=device, tol=_CV_TOL)
        probs[held] = head.predict_proba(X[held])
    return probs


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold id per item from a shuffled stratified K-fold split.

    Why fewer folds on small data: StratifiedKFold refuses more folds than the largest label
    has items, and a first project of a handful of items must still be ranked; the folds are
    then as many as that label's items, and when every label has a single item, the items are
    dealt into at most ``folds`` folds (alone when that few). With at least ``folds`` items of
    some label the split is unchanged.
    """
    y = np.asarray(y, dtype=np.int64)
    if len(y) < 2:
        raise ValueError(f"out-of-fold probabilities need at least 2 items, got {len(y)}")
    largest = int(np.bincount(y).max())
    fold = np.empty(len(y), dtype=np.int64)
    if largest < 2:
        fold[np.random.default_rng(seed).permutation(len(y))] = np.arange(len(y)) % folds
        return fold
    skf = StratifiedKFold(n_splits=min(folds, largest), shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # "The least populated class has only n members": expected on small data, see above
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        splits = list(skf.split(np.zeros(len(y)), y))
    for f, (_, held) in enumerate(splits):
        fold[held] = f
    return fold


def cleanlab_scores_with_info(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    seed: int = 0,
    folds: int = 5,
    l2_grid: Sequence[float] | None = None,
    method: str = CLEANLAB_METHOD,
    device: str | None = None,
) -> CleanlabResult:
    """cleanlab's label-quality ranking, as a careful user would run it.

    Out-of-fold probabilities come from the same L2 softmax head Assay uses
    (``fit_logistic_head``), so a comparison isolates the ranking rule from the model. Its
    regularisation is tuned: every l2 in the grid is scored by out-of-fold log-loss (an
    over-regularised head underfits and weakens any detector) and the best one's out-of-fold
    probabilities go to ``cleanlab.rank.get_label_quality_scores``; suspicion = 1 - quality.
    """
    X = np.asarray(X)
    y = np.asarray(y, dtype=np.int64)
    fold = stratified_folds(y, folds, seed)
    best: tuple[float, float, np.ndarray] | None = None
    cv_log_loss: dict[float, float] = {}
    for l2 in DEFAULT_L2_GRID if l2_grid is None else l2_grid:
        probs = out_of_fold_probs(X, y, n_classes, fold, l2=l2, device=device)
        cv_log_loss[float(l2)] = float(loss_scores(probs, y).mean())
        if best is None or cv_log_loss[float(l2)] < best[1]:
            best = (float(l2), cv_log_loss[float(l2)], probs)
    assert best is not None, "l2_grid must not be empty"
    l2, _, probs = best
    quality = get_label_quality_scores(y, probs, method=method)
    return CleanlabResult(1.0 - quality, probs, fold, l2, method, cv_log_loss)


def cleanlab_scores(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    seed: int = 0,
    folds: int = 5,
    l2_grid: Sequence[float] | None = None,
    method: str = CLEANLAB_METHOD,
    device: str | None = None,
) -> np.ndarray:
    """Suspicion (n,) from ``cleanlab_scores_with_info``; see there."""
    return cleanlab_scores_with_info(
        X, y, n_classes, seed=seed, folds=folds, l2_grid=l2_grid, method=method, device=device
    ).suspicion
