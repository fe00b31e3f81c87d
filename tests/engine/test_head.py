"""The logistic head must reach the true optimum: influence functions assume it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from tests.engine.synthetic import softmax_problem
from workers.engine.head import LogisticHead, fit_logistic_head


def _problem(seed: int = 0, n: int = 120, d: int = 6, C: int = 3):
    rng = np.random.default_rng(seed)
    X, y, _ = softmax_problem(rng, n, d, C)
    return X, y, C


def _scipy_fit(X, y, C, l2, w):
    """Independent solver: numpy objective with a hand-written analytic gradient."""
    n, d = X.shape
    Z = np.hstack([X, np.ones((n, 1))])
    Y = np.eye(C)[y]

    def f(theta):
        T = theta.reshape(C, d + 1)
        logp = log_softmax(Z @ T.T, axis=1)
        val = -(w * (Y * logp).sum(1)).sum() / w.sum() + 0.5 * l2 * theta @ theta
        grad = ((np.exp(logp) - Y) * w[:, None]).T @ Z / w.sum() + l2 * T
        return val, grad.ravel()

    res = minimize(
        f,
        np.zeros(C * (d + 1)),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10000},
    )
    return res.x.reshape(C, d + 1)


def test_matches_independent_scipy_solution():
    X, y, C = _problem()
    head = fit_logistic_head(X, y, C, l2=0.05, device="cpu")
    ref = _scipy_fit(X, y, C, 0.05, np.ones(len(y)))
    np.testing.assert_allclose(head.weight, ref[:, :-1], atol=1e-6)
    np.testing.assert_allclose(head.bias, ref[:, -1], atol=1e-6)


def test_sample_weight_matches_scipy_and_zero_weight_drops_rows():
    X, y, C = _problem(seed=1)
    w = np.random.default_rng(1).uniform(0.2, 2.0, size=len(y))
    w[:10] = 0.0
    head = fit_logistic_head(X, y, C, l2=0.02, sample_weight=w)
    ref = _scipy_fit(X, y, C, 0.02, w)
    np.testing.assert_allclose(head.weight, ref[:, :-1], atol=1e-6)
    ones = np.ones(len(y))
    ones[:10] = 0.0
    dropped = fit_logistic_head(X[10:], y[10:], C, l2=0.02)
    zeroed = fit_logistic_head(X, y, C, l2=0.02, sample_weight=ones)
    np.testing.assert_allclose(zeroed.weight, dropped.weight, atol=1e-8)
    np.testing.assert_allclose(zeroed.bias, dropped.bias, atol=1e-8)


def test_warm_start_reaches_same_optimum_and_is_deterministic():
    X, y, C = _problem(seed=2)
    cold = fit_logistic_head(X, y, C, l2=0.01)
    again = fit_logistic_head(X, y, C, l2=0.01)
    np.testing.assert_array_equal(cold.weight, again.weight)
    start = LogisticHead(weight=cold.weight + 0.3, bias=cold.bias - 0.2)
    warm = fit_logistic_head(X, y, C, l2=0.01, init=start)
    np.testing.assert_allclose(warm.weight, cold.weight, atol=1e-8)
    np.testing.assert_allclose(warm.bias, cold.bias, atol=1e-8)


def test_predict_proba_and_log_loss():
    rng = np.random.default_rng(3)
    head = LogisticHead(weight=rng.normal(size=(4, 5)) * 30, bias=rng.normal(size=4))
    X = rng.normal(size=(50, 5))
    y = rng.integers(0, 4, size=50)
    logits = X @ head.weight.T + head.bias
    np.testing.assert_allclose(head.predict_proba(X), softmax(logits, axis=1), rtol=1e-12)
    expected = -log_softmax(logits, axis=1)[np.arange(50), y]
    np.testing.assert_allclose(head.log_loss(X, y), expected, rtol=1e-10, atol=1e-12)


def test_rejects_non_positive_l2():
    X, y, C = _problem()
    with pytest.raises(ValueError):
        fit_logistic_head(X, y, C, l2=0.0)
