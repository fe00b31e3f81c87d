"""TracInCP against an independent numpy SGD and brute-force autograd gradient sums."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import softmax

from tests.engine.synthetic import softmax_problem
from workers.engine import TracInCP, fit_logistic_head, fit_sgd_head
from workers.engine.head import LogisticHead

L2 = 0.02


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(5)
    n, d, C = 50, 4, 3
    X, y, _ = softmax_problem(rng, n, d, C, scale=2)
    Xd = rng.normal(size=(15, d))
    yd = rng.integers(0, C, size=15)
    est = TracInCP.fit(X, y, C, l2=L2, seed=3, epochs=4, batch_size=8, lr=0.7, block_size=6)
    return {"X": X, "y": y, "Xd": Xd, "yd": yd, "C": C, "est": est}


def _numpy_sgd(X, y, C, *, l2, epochs, batch_size, lr, seed, w):
    """Plain numpy mini-batch SGD with the documented batch gradient and shuffle."""
    n, d = X.shape
    Z = np.hstack([X, np.ones((n, 1))])
    Y = np.eye(C)[y]
    theta = np.zeros((C, d + 1))
    rng = np.random.default_rng(seed)
    ends = []
    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(0, n, batch_size):
            b = order[s : s + batch_size]
            resid = (softmax(Z[b] @ theta.T, axis=1) - Y[b]) * w[b, None]
            theta = theta - lr * (resid.T @ Z[b] / len(b) + l2 * theta)
        ends.append(theta.copy())
    return ends


def test_sgd_matches_numpy_reference_including_sample_weights(tiny):
    X, y, C = tiny["X"], tiny["y"], tiny["C"]
    w = np.ones(len(y))
    w[[3, 17]] = 0.0
    run = fit_sgd_head(X, y, C, l2=L2, epochs=3, batch_size=7, lr=0.4, seed=1, sample_weight=w)
    ref = _numpy_sgd(X, y, C, l2=L2, epochs=3, batch_size=7, lr=0.4, seed=1, w=w)
    assert len(run.thetas) == 3
    for got, want in zip(run.thetas, ref, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-12)
    np.testing.assert_allclose(run.head.weight, ref[-1][:, :-1], atol=1e-12)


def test_full_batch_sgd_minimises_the_exact_heads_objective(tiny):
    X, y, C = tiny["X"], tiny["y"], tiny["C"]
    run = fit_sgd_head(X, y, C, l2=L2, epochs=3000, batch_size=len(y), lr=1.0)
    opt = fit_logistic_head(X, y, C, l2=L2)
    np.testing.assert_allclose(run.head.weight, opt.weight, atol=1e-6)
    np.testing.assert_allclose(run.head.bias, opt.bias, atol=1e-6)


def _autograd_grads(theta: np.ndarray, X, y) -> np.ndarray:
    rows = []
    for x_i, y_i in zip(X, y, strict=True):
        t = torch.tensor(theta, requires_grad=True)
        logits = torch.tensor(x_i[None]) @ t[:, :-1].T + t[:, -1]
        torch.nn.functional.cross_entropy(logits, torch.tensor([int(y_i)])).backward()
        rows.append(t.grad.reshape(-1).numpy())
    return np.array(rows)


def _brute_matrix(t, Xt, yt) -> np.ndarray:
    """(1/n) Σ_c lr ∇L_t(θ_c)·∇L_j(θ_c) with autograd per-example gradients."""
    est = t["est"]
    total = 0.0
    for theta in est.run.thetas:
        total = total + _autograd_grads(theta, Xt, yt) @ _autograd_grads(theta, t["X"], t["y"]).T
    return est.run.lr * total / len(t["y"])


def test_influence_self_and_dev_match_brute_force(tiny):
    est = tiny["est"]
    M = _brute_matrix(tiny, tiny["Xd"], tiny["yd"])
    parts = list(est.influence(tiny["Xd"], tiny["yd"]))
    assert len(parts) == 3  # block_size 6 over 15 targets
    np.testing.assert_allclose(np.concatenate([b for _, b in parts]), M, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(
        est.dev_influence(tiny["Xd"], tiny["yd"]), M.mean(axis=0), rtol=1e-10, atol=1e-14
    )
    S = _brute_matrix(tiny, tiny["X"], tiny["y"])
    np.testing.assert_allclose(est.self_influence(), np.diag(S), rtol=1e-10)
    assert est.model is est.run.head
    assert est.diagnostics["checkpoints"] == 4


def test_top_k_matches_full_argsort(tiny):
    est, X, y = tiny["est"], tiny["X"], tiny["y"]
    M = _brute_matrix(tiny, X, y)
    top = est.top_k(X, y, 3, exclude_self=np.arange(len(y)))
    for t in range(len(y)):
        row = M[t].copy()
        row[t] = np.nan
        cand = np.flatnonzero(~np.isnan(row))
        np.testing.assert_array_equal(top.supporters_idx[t], cand[np.argsort(-row[cand])[:3]])
        np.testing.assert_array_equal(top.opposers_idx[t], cand[np.argsort(row[cand])[:3]])


def test_random_projection_approximates_the_exact_dot_products(tiny):
    X, y = tiny["X"], tiny["y"]
    exact = np.concatenate([b for _, b in tiny["est"].influence(tiny["Xd"], tiny["yd"])])

    def projected(k: int, seed: int) -> np.ndarray:
        est = TracInCP(tiny["est"].run, X, y, projection_dim=k, seed=seed)
        assert est.diagnostics["projection_dim"] == k
        return np.concatenate([b for _, b in est.influence(tiny["Xd"], tiny["yd"])])

    def rel_err(a: np.ndarray) -> float:
        return float(np.linalg.norm(a - exact) / np.linalg.norm(exact))

    np.testing.assert_array_equal(projected(64, 0), projected(64, 0))  # seeded
    # Johnson-Lindenstrauss: error shrinks like 1/sqrt(k); the estimate is unbiased.
    assert rel_err(projected(8, 0)) > 3 * rel_err(projected(8192, 0))
    assert rel_err(projected(8192, 0)) < 0.05
    mean_small = np.mean([projected(8, s) for s in range(100)], axis=0)
    assert rel_err(mean_small) < 0.15 < 0.5 < rel_err(projected(8, 0))


def test_retrain_without_drops_only_that_items_steps(tiny):
    est, X, y, C = tiny["est"], tiny["X"], tiny["y"], tiny["C"]
    w = np.ones(len(y))
    w[11] = 0.0
    ref = _numpy_sgd(X, y, C, l2=L2, epochs=4, batch_size=8, lr=0.7, seed=3, w=w)[-1]
    again = est.retrain_without(11)
    assert isinstance(again, LogisticHead)
    np.testing.assert_allclose(again.weight, ref[:, :-1], atol=1e-12)
