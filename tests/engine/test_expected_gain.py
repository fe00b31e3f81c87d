"""The expected gain of re-annotating is what its derivation says: with two classes, harm over
the trained head's p(label wrong) is the dev-loss drop of correcting the label, checked against
refitting the head with each label flipped (brute force), for the head as trained and for the
head served with its biases re-fitted on dev; a gold head that agrees with the trained one
changes nothing; a gold head with too few rows of a class is not used."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr

from workers.engine.calibration import refit_bias
from workers.engine.estimators import ExactHeadInfluence
from workers.engine.expected_gain import expected_gain, gold_head_probs
from workers.engine.head import fit_logistic_head

L2 = 1e-3  # the penalty term of the removal gradient (a shared offset) stays small


def two_classes(seed: int, n: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 4)) + np.where(y[:, None] == 1, 0.8, -0.8)
    flipped = rng.choice(n, n // 8, replace=False)
    y_silver = y.copy()
    y_silver[flipped] = 1 - y_silver[flipped]
    return X, y_silver


def dev_loss(X, y, X_dev, y_dev, calibrate: bool) -> float:
    head = fit_logistic_head(X, y, 2, l2=L2)
    if calibrate:
        head = refit_bias(head, X_dev, y_dev, l2=L2)
    return float(head.log_loss(X_dev, y_dev).mean())


@pytest.mark.parametrize("calibrate", [False, True])
def test_harm_over_p_wrong_is_the_gain_of_correcting_the_label(calibrate):
    X, y = two_classes(0, 200)
    X_dev, y_dev = two_classes(1, 60)
    est = ExactHeadInfluence.fit(X, y, 2, l2=L2)
    if calibrate:
        est = est.calibrated(X_dev, y_dev)
    harm = -est.dev_influence(X_dev, y_dev)
    certain_wrong = np.eye(2)[1 - y]  # a gold head sure that every label is wrong
    predicted = expected_gain(harm, y, est.trained.predict_proba(X), certain_wrong)
    base = dev_loss(X, y, X_dev, y_dev, calibrate)
    refit = np.empty(len(y))
    for i in range(len(y)):
        flipped = y.copy()
        flipped[i] = 1 - flipped[i]
        refit[i] = base - dev_loss(X, flipped, X_dev, y_dev, calibrate)
    assert pearsonr(predicted, refit)[0] > 0.99
    # first order, so the same size too, not only the same order: slope ~1; the removal
    # gradient's share of the mean's normaliser leaves a small shared offset
    slope, offset = np.polyfit(refit, predicted, 1)
    assert 0.95 < slope < 1.05
    assert abs(offset) < 0.1 * np.abs(refit).max()


def test_a_gold_head_that_agrees_changes_nothing_and_one_short_of_a_class_is_not_used():
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(3), size=50)
    y = rng.integers(0, 3, 50)
    harm = rng.normal(size=50)
    np.testing.assert_allclose(expected_gain(harm, y, probs, probs), harm, rtol=1e-12)
    X = rng.normal(size=(50, 4))
    assert gold_head_probs(X, X[:10], np.zeros(10, dtype=np.int64), 3, l2=L2) is None
    assert gold_head_probs(X, X, y, 3, l2=L2, min_per_class=np.bincount(y).min() + 1) is None
    gold = gold_head_probs(X, X, y, 3, l2=L2)
    assert gold is not None and gold.shape == (50, 3)
    np.testing.assert_allclose(gold.sum(1), 1.0)
