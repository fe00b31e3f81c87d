"""The evidence lists' signs, pinned against brute-force leave-one-out retraining.

On the model that is served (biases re-fitted on a gold dev set, as a project with dev data
runs): removing an item's top supporter and retraining (then re-calibrating) raises the loss of
the item's own label on it; removing its top opposer lowers it; removing the top reason for a
suggestion raises the loss of the suggested label. Each check fails if its list's sign (or the
label it is taken at) is flipped.
"""

from __future__ import annotations

import numpy as np
import pytest

from workers.engine import score_training_set
from workers.engine.inffeed import AdjustConfig, suggest_labels

L2 = 1e-2


@pytest.fixture(scope="module")
def served():
    """40 noisy 2-D points of two labels (a few flipped, as silver labels are), a dev set."""
    rng = np.random.default_rng(3)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, n)
        return rng.normal(size=(n, 2)) + np.where(y[:, None] == 1, 1.0, -1.0), y

    X, y = draw(40)
    y[rng.random(40) < 0.15] ^= 1
    Xd, yd = draw(20)
    result = score_training_set(X, y, 2, X_dev=Xd, y_dev=yd, calibrate=True, l2=L2, k=3)
    assert result.diagnostics.get("dev_calibrated") == 1.0, "the served model is calibrated"
    return X, y, Xd, yd, result


def _loss_without(result, X, index: int, target: int, label: int) -> float:
    """The served model retrained without ``index``: its loss of ``label`` on ``target``."""
    head = result.influence.retrain_without(index)
    return float(head.log_loss(X[target : target + 1], np.array([label]))[0])


def _strongest_targets(values: np.ndarray, count: int = 5) -> np.ndarray:
    """Targets whose first entry is strongest: where first-order influence is reliable."""
    return np.argsort(-np.abs(values[:, 0]), kind="stable")[:count]


def test_top_supporter_removed_raises_the_loss_of_the_items_label(served):
    X, y, _, _, result = served
    for t in _strongest_targets(result.top.supporters_val):
        j = int(result.top.supporters_idx[t, 0])
        assert result.top.supporters_val[t, 0] > 0
        before = float(result.head.log_loss(X[t : t + 1], y[t : t + 1])[0])
        assert _loss_without(result, X, j, t, y[t]) > before, (t, j)


def test_top_opposer_removed_lowers_the_loss_of_the_items_label(served):
    X, y, _, _, result = served
    for t in _strongest_targets(result.top.opposers_val):
        j = int(result.top.opposers_idx[t, 0])
        assert result.top.opposers_val[t, 0] < 0
        before = float(result.head.log_loss(X[t : t + 1], y[t : t + 1])[0])
        assert _loss_without(result, X, j, t, y[t]) < before, (t, j)


def test_top_reason_removed_raises_the_loss_of_the_suggested_label(served):
    """Including suggestions the vote changed (the prediction's voters are then the suggested
    label's opposers: shown as its reasons before, they failed this check)."""
    X, y, _, _, result = served
    # every unsure item votes, so some suggestions differ from the prediction
    config = AdjustConfig(k=5, weighting="uniform", threshold=1.0)
    found = suggest_labels(result.influence, X, y, config, np.arange(len(y)))
    adjusted = np.nonzero(found.adjusted)[0]
    assert len(adjusted), "the case must include suggestions the vote changed"
    targets = [*adjusted[:5], *_strongest_targets(found.reason_val, 3)]
    for t in targets:
        j, s = int(found.reason_idx[t, 0]), int(found.label[t])
        assert found.reason_val[t, 0] > 0
        before = float(result.head.log_loss(X[t : t + 1], np.array([s]))[0])
        assert _loss_without(result, X, j, t, s) > before, (t, j, s)
