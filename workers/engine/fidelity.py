"""The user-runnable fidelity check: do an estimator's numbers predict real retraining?

For a random sample of training items the estimator's own model is retrained without each one
(``FittableEstimator.retrain_without``: warm-started L-BFGS for the convex heads, the same
seeded SGD run for TracIn) and the actual change of the mean dev loss is compared with the
predicted one, ``dev_influence``, which estimates exactly that difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr

from .estimators import ESTIMATORS


def loo_fidelity(
    estimator_name: str,
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    X_dev: np.ndarray,
    y_dev: np.ndarray,
    l2: float,
    n_items: int,
    seed: int = 0,
    ids: np.ndarray | None = None,
    options: Mapping[str, Any] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Spearman and Pearson correlation of predicted vs actual leave-one-out dev-loss change.

    Items are drawn uniformly (seeded), not the most influential ones, so the figures describe
    the typical item. Returns ``{"spearman", "pearson", "n_items", "predicted", "actual"}``
    with the per-item arrays in sample order.
    """
    y = np.asarray(y, dtype=np.int64)
    est = ESTIMATORS[estimator_name].fit(
        X, y, n_classes, l2=l2, ids=ids, seed=seed, device=device, **(options or {})
    )
    n_items = min(int(n_items), len(y))
    items = np.random.default_rng(seed).choice(len(y), n_items, replace=False)
    predicted = est.dev_influence(X_dev, y_dev)[items]
    base = est.model.log_loss(X_dev, y_dev).mean()
    actual = np.array(
        [est.retrain_without(int(j)).log_loss(X_dev, y_dev).mean() - base for j in items]
    )
    return {
        "spearman": float(spearmanr(predicted, actual)[0]),
        "pearson": float(pearsonr(predicted, actual)[0]),
        "n_items": n_items,
        "predicted": predicted,
        "actual": actual,
    }
