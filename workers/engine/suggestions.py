"""InfFeed objective 1 inside a scoring run: suggested labels with their evidence.

The adjustment (k, weighting, confidence threshold) is chosen on the gold dev set only, then
applied to the training items (their own row never votes for them) and to held-out items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .estimators import FittableEstimator
from .inffeed import (
    AdjustConfig,
    AdjustmentSelection,
    Suggestions,
    macro_f1,
    select_adjustment,
    suggest_labels,
)

K_GRID = (1, 3, 5, 10, 25)


@dataclass
class InfFeedReport:
    config: AdjustConfig
    dev_f1_before: float
    dev_f1_after: float
    train: Suggestions
    test: Suggestions | None
    test_f1_before: float | None
    test_f1_after: float | None


def choose_adjustment(
    influence: FittableEstimator, y_train: np.ndarray, X_dev: np.ndarray, y_dev: np.ndarray
) -> AdjustmentSelection:
    """The adjustment with the best dev macro-F1 (chosen once; scoring shards share it)."""
    probs_dev = influence.model.predict_proba(X_dev)
    top_dev = influence.top_k(X_dev, probs_dev.argmax(axis=1), max(K_GRID))
    return select_adjustment(probs_dev, top_dev, y_train, y_dev, k_grid=K_GRID)


def inffeed_suggestions(
    influence: FittableEstimator,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_dev: np.ndarray,
    y_dev: np.ndarray,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    *,
    chosen: AdjustmentSelection | None = None,
    train: Suggestions | None = None,
) -> InfFeedReport:
    """Choose the adjustment on dev; suggest labels for training (and test) items.

    ``chosen`` and ``train`` are given when scoring shards already computed them.
    """
    if chosen is None:
        chosen = choose_adjustment(influence, y_train, X_dev, y_dev)
    if train is None:
        train = suggest_labels(influence, X_train, y_train, chosen.config, np.arange(len(y_train)))
    test = test_before = test_after = None
    if X_test is not None and len(X_test):
        test = suggest_labels(influence, X_test, y_train, chosen.config)
        if y_test is not None:
            test_before = macro_f1(y_test, influence.model.predict_proba(X_test).argmax(axis=1))
            test_after = macro_f1(y_test, test.label)
    return InfFeedReport(
        chosen.config,
        chosen.dev_f1_before,
        chosen.dev_f1_after,
        train,
        test,
        test_before,
        test_after,
    )
