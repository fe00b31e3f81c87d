"""Dev calibration of the head's biases, and influence on the calibrated model: checked against
the optimality condition, a finite difference and leave-one-out retraining + re-calibration."""

from __future__ import annotations

import numpy as np
import pytest

from workers.engine import ExactHeadInfluence, fit_logistic_head, score_training_set
from workers.engine.calibration import refit_bias
from workers.engine.scoring import influence_targets

C, D, L2 = 3, 4, 1e-2


def skewed_problem(n_classes: int):
    """Training labels pushed towards class 0 (as a heuristic labeller skews), a gold dev set
    and gold training rows; the true labels depend on the inputs the same way everywhere."""
    rng = np.random.default_rng(0)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, n_classes, n)
        return rng.normal(size=(n, D)) + 1.5 * np.eye(n_classes, D)[y], y

    X, y_true = draw(120)
    y = np.where(rng.random(120) < 0.35, 0, y_true)
    gold = np.arange(120) < 25
    y[gold] = y_true[gold]
    Xd, yd = draw(50)
    return X, y, Xd, yd, gold


@pytest.fixture(scope="module")
def skewed():
    return skewed_problem(C)


def test_refit_bias_meets_its_optimality_condition(skewed):
    """Mean predicted probability per class on dev = dev frequency, up to the pull towards the
    trained biases; the weights are untouched and dev loss falls."""
    X, y, Xd, yd, _ = skewed
    head = fit_logistic_head(X, y, C, l2=L2)
    served = refit_bias(head, Xd, yd, l2=L2)
    frequency = np.bincount(yd, minlength=C) / len(yd)
    condition = served.predict_proba(Xd).mean(axis=0) - frequency + L2 * (served.bias - head.bias)
    np.testing.assert_allclose(condition, 0.0, atol=1e-8)
    np.testing.assert_array_equal(served.weight, head.weight)
    assert served.log_loss(Xd, yd).mean() < head.log_loss(Xd, yd).mean() - 0.01
    # the skew towards class 0 is what the re-fitted biases take back
    assert served.bias[0] - served.bias[1:].mean() < head.bias[0] - head.bias[1:].mean() - 0.1


def _served_target_loss(X, y, Xd, yd, Xt, yt, weights=None, init=None) -> float:
    n_classes = int(max(y.max(), yd.max())) + 1
    head = fit_logistic_head(X, y, n_classes, l2=L2, sample_weight=weights, init=init, tol=1e-13)
    return float(refit_bias(head, Xd, yd, l2=L2).log_loss(Xt, yt).mean())


@pytest.mark.parametrize("n_classes", [2, 3])
def test_calibrated_influence_is_the_derivative_of_the_recalibrated_loss(n_classes):
    """Down-weighting item j by ε, retraining and re-calibrating changes the target loss by
    ε · n · influence_j + the same constant for every j (the regulariser's share of the
    normalisation), to first order: a finite-difference check of the implicit-function term."""
    X, y, Xd, yd, gold = skewed_problem(n_classes)
    est = ExactHeadInfluence.fit(X, y, n_classes, l2=L2)
    served = est.calibrated(Xd, yd)
    Xt, yt = influence_targets(Xd, yd, X, y, gold)
    predicted = served.dev_influence(Xt, yt)
    base = _served_target_loss(X, y, Xd, yd, Xt, yt, init=est.trained)  # as tightly solved
    eps = 1e-3  # small against 1, large against the solvers' tolerances
    items = np.arange(0, len(y), 3)
    finite = []
    for j in items:
        w = np.ones(len(y))
        w[j] -= eps
        finite.append((_served_target_loss(X, y, Xd, yd, Xt, yt, w, est.trained) - base) / eps)
    slope, _ = np.polyfit(finite, predicted[items], 1)
    fit = np.corrcoef(predicted[items], finite)[0, 1]
    uncalibrated = np.corrcoef(est.dev_influence(Xt, yt)[items], finite)[0, 1]
    print(f"\nPearson with the finite difference: {fit:.6f} (uncalibrated: {uncalibrated:.4f})")
    assert fit > 0.9999
    assert slope == pytest.approx(1.0, abs=0.01)
    assert uncalibrated < 0.99


def test_calibrated_influence_predicts_leave_one_out_with_recalibration(skewed):
    X, y, Xd, yd, gold = skewed
    served = ExactHeadInfluence.fit(X, y, C, l2=L2).calibrated(Xd, yd)
    Xt, yt = influence_targets(Xd, yd, X, y, gold)
    base = float(served.model.log_loss(Xt, yt).mean())
    items = np.arange(0, len(y), 2)
    actual = [
        _served_target_loss(np.delete(X, j, 0), np.delete(y, j), Xd, yd, Xt, yt) - base
        for j in items
    ]
    fit = np.corrcoef(served.dev_influence(Xt, yt)[items], actual)[0, 1]
    print(f"\nPearson with leave-one-out + re-calibration: {fit:.4f}")
    assert fit > 0.95


def test_calibrated_estimator_serves_the_dev_biases_and_keeps_its_hessian(skewed):
    X, y, Xd, yd, _ = skewed
    est = ExactHeadInfluence.fit(X, y, C, l2=L2)
    served = est.calibrated(Xd, yd)
    np.testing.assert_array_equal(served.model.bias, refit_bias(est.model, Xd, yd, l2=L2).bias)
    np.testing.assert_array_equal(served.trained.bias, est.model.bias)
    np.testing.assert_array_equal(served.cholesky_factor(), est.cholesky_factor())
    assert served.is_calibrated and not est.is_calibrated
    assert served.diagnostics["dev_calibrated"] == 1.0 and "dev_calibrated" not in est.diagnostics
    # leaving an item out is followed by re-calibration, as the influence assumes
    without = served.retrain_without(5)
    np.testing.assert_array_equal(
        without.bias, refit_bias(est.retrain_without(5), Xd, yd, l2=L2).bias
    )
    with pytest.raises(ValueError, match="at least one dev item"):
        est.calibrated(Xd[:0], yd[:0])


def test_calibrated_self_influence_is_each_items_influence_on_its_own_served_loss(skewed):
    X, y, Xd, yd, _ = skewed
    est = ExactHeadInfluence.fit(X, y, C, l2=L2)
    served = est.calibrated(Xd, yd)
    own = np.concatenate([np.diag(block[:, sl]) for sl, block in served.influence(X, y)])
    np.testing.assert_allclose(served.self_influence(), own, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(served.self_influence(slice(10, 30)), own[10:30], rtol=1e-10)
    assert not np.allclose(served.self_influence(), est.self_influence())


def test_scoring_calibrates_the_exact_head_only(skewed):
    X, y, Xd, yd, _ = skewed
    plain = score_training_set(X, y, C, X_dev=Xd, y_dev=yd, l2=L2, k=1)
    calibrated = score_training_set(X, y, C, X_dev=Xd, y_dev=yd, l2=L2, k=1, calibrate=True)
    served = ExactHeadInfluence.fit(X, y, C, l2=L2).calibrated(Xd, yd)
    np.testing.assert_allclose(calibrated.probs, served.model.predict_proba(X))
    np.testing.assert_allclose(calibrated.dev_influence, served.dev_influence(Xd, yd))
    assert not np.allclose(calibrated.probs, plain.probs)
    assert calibrated.diagnostics["dev_calibrated"] == 1.0
    # without a dev set there is nothing to calibrate on; tracin's model is served as trained
    alone = score_training_set(X, y, C, l2=L2, k=1, calibrate=True)
    np.testing.assert_allclose(alone.probs, plain.probs)
    tracin = score_training_set(
        X, y, C, X_dev=Xd, y_dev=yd, l2=L2, k=1, estimator="tracin", calibrate=True
    )
    assert "dev_calibrated" not in tracin.diagnostics
