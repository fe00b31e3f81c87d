"""Exact-head influence against autograd and brute-force numpy on a tiny random problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.engine.synthetic import softmax_problem
from workers.engine import ExactHeadInfluence
from workers.engine.head import fit_logistic_head, regularised_objective

L2 = 0.03


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(7)
    n, d, C = 60, 5, 3
    X, y, _ = softmax_problem(rng, n, d, C)
    Xd = rng.normal(size=(25, d))
    yd = rng.integers(0, C, size=25)
    head = fit_logistic_head(X, y, C, l2=L2, device="cpu")
    inf = ExactHeadInfluence(head, X, y, l2=L2, device="cpu", block_size=1024)
    return {"X": X, "y": y, "Xd": Xd, "yd": yd, "C": C, "head": head, "inf": inf}


def _theta(head) -> torch.Tensor:
    return torch.tensor(np.concatenate([head.weight, head.bias[:, None]], axis=1))


def _brute_matrix(t, Xt, yt) -> np.ndarray:
    """Full targets x train influence with autograd gradients and a dense numpy solve."""
    G_train = _autograd_grads(t["head"], t["X"], t["y"])
    G_t = _autograd_grads(t["head"], Xt, yt)
    H = _autograd_hessian(t)
    return G_t @ np.linalg.solve(H, G_train.T) / len(t["y"])


def _autograd_grads(head, X, y) -> np.ndarray:
    rows = []
    for x_i, y_i in zip(X, y, strict=True):
        theta = _theta(head).requires_grad_(True)
        logits = torch.tensor(x_i[None]) @ theta[:, :-1].T + theta[:, -1]
        torch.nn.functional.cross_entropy(logits, torch.tensor([int(y_i)])).backward()
        rows.append(theta.grad.reshape(-1).numpy())
    return np.array(rows)


def _autograd_hessian(t, l2: float = L2) -> np.ndarray:
    X = torch.tensor(t["X"])
    y = torch.tensor(t["y"])
    w = torch.ones(len(y), dtype=torch.float64)
    theta = _theta(t["head"])
    shape = theta.shape

    def f(flat: torch.Tensor) -> torch.Tensor:
        return regularised_objective(flat.reshape(shape), X, y, w, l2)

    return torch.autograd.functional.hessian(f, theta.reshape(-1)).numpy()


def test_hessian_matches_autograd(tiny):
    np.testing.assert_allclose(tiny["inf"].hessian(), _autograd_hessian(tiny), atol=1e-12)


def test_gradients_match_autograd(tiny):
    got = tiny["inf"].gradients(tiny["Xd"], tiny["yd"])
    np.testing.assert_allclose(
        got, _autograd_grads(tiny["head"], tiny["Xd"], tiny["yd"]), atol=1e-12
    )


def test_self_and_dev_influence_match_brute_force(tiny):
    M_self = _brute_matrix(tiny, tiny["X"], tiny["y"])
    np.testing.assert_allclose(tiny["inf"].self_influence(), np.diag(M_self), rtol=1e-9)
    assert (tiny["inf"].self_influence() > 0).all()
    M_dev = _brute_matrix(tiny, tiny["Xd"], tiny["yd"])
    np.testing.assert_allclose(
        tiny["inf"].dev_influence(tiny["Xd"], tiny["yd"]), M_dev.mean(axis=0), rtol=1e-9, atol=1e-14
    )


def test_blocked_stream_equals_unblocked_and_brute_force(tiny):
    ref = _brute_matrix(tiny, tiny["Xd"], tiny["yd"])
    full = list(tiny["inf"].influence(tiny["Xd"], tiny["yd"]))
    assert len(full) == 1
    small = ExactHeadInfluence(tiny["head"], tiny["X"], tiny["y"], l2=L2, block_size=7)
    parts = list(small.influence(tiny["Xd"], tiny["yd"]))
    assert [sl.start for sl, _ in parts] == list(range(0, 25, 7))
    stitched = np.concatenate([blk for _, blk in parts])
    np.testing.assert_allclose(stitched, full[0][1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(stitched, ref, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(small.self_influence(), tiny["inf"].self_influence(), rtol=1e-12)


def test_top_k_matches_full_argsort(tiny):
    X, y = tiny["X"], tiny["y"]
    M = _brute_matrix(tiny, X, y)
    exclude = np.arange(len(y))
    exclude[::4] = -1  # some targets may include themselves
    inf = ExactHeadInfluence(tiny["head"], X, y, l2=L2, block_size=9)
    top = inf.top_k(X, y, 4, exclude_self=exclude)
    for t in range(len(y)):
        row = M[t].copy()
        cand = np.array([j for j in range(len(y)) if j != exclude[t]])
        sup = cand[np.argsort(-row[cand])[:4]]
        opp = cand[np.argsort(row[cand])[:4]]
        np.testing.assert_array_equal(top.supporters_idx[t], sup)
        np.testing.assert_array_equal(top.opposers_idx[t], opp)
        np.testing.assert_allclose(top.supporters_val[t], row[sup], rtol=1e-9)
        np.testing.assert_allclose(top.opposers_val[t], row[opp], rtol=1e-9)
    # Excluded targets never cite themselves; non-excluded ones do when self-influence wins.
    own = np.arange(len(y))[:, None]
    has_self = (top.supporters_idx == own).any(axis=1)
    assert not has_self[exclude >= 0].any()
    assert has_self[exclude < 0].any()


def test_sign_convention_against_leave_one_out(tiny):
    """influence(j -> t) ~ loss_t(without j) - loss_t(with j), including its sign."""
    X, y, C, head = tiny["X"], tiny["y"], tiny["C"], tiny["head"]
    M = _brute_matrix(tiny, tiny["Xd"], tiny["yd"])
    base = head.log_loss(tiny["Xd"], tiny["yd"])
    pred, actual = [], []
    for j in range(0, len(y), 6):
        keep = np.arange(len(y)) != j
        h = fit_logistic_head(X[keep], y[keep], C, l2=L2, init=head)
        actual.append(h.log_loss(tiny["Xd"], tiny["yd"]) - base)
        pred.append(M[:, j])
    pred, actual = np.concatenate(pred), np.concatenate(actual)
    assert np.corrcoef(pred, actual)[0, 1] > 0.95
    big = np.abs(pred) > np.quantile(np.abs(pred), 0.5)
    assert (np.sign(pred[big]) == np.sign(actual[big])).mean() > 0.95


def test_auto_damping_is_zero_and_reported_for_a_well_posed_head(tiny):
    eig = np.linalg.eigvalsh(_autograd_hessian(tiny))
    assert tiny["inf"].diagnostics["damping"] == 0.0
    # reported as the Gershgorin bound (no eigendecomposition needed): above the true value,
    # and within the bound's usual slack
    reported = tiny["inf"].diagnostics["condition_number"]
    assert eig.max() / eig.min() <= reported * (1 + 1e-9)
    assert reported <= 10 * eig.max() / eig.min()


def test_auto_damping_bounds_the_condition_number_of_a_near_singular_hessian():
    # Softmax is over-parameterised: shifting all classes' weights alike changes nothing, so
    # with a negligible l2 the Hessian is singular up to l2 in those directions.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 4))
    y = rng.integers(0, 3, size=80)
    l2 = 1e-12
    head = fit_logistic_head(X, y, 3, l2=l2)
    t = {"X": X, "y": y, "head": head}
    H = _autograd_hessian(t, l2)
    eig = np.linalg.eigvalsh(H)
    assert eig.max() / eig.min() > 1e9  # the undamped problem is too ill-conditioned

    inf = ExactHeadInfluence(head, X, y, l2=l2, max_condition=1e6)
    lam = inf.diagnostics["damping"]
    assert lam > 0
    assert (eig.max() + lam) / (eig.min() + lam) == pytest.approx(1e6, rel=1e-6)
    assert inf.diagnostics["condition_number"] == pytest.approx(1e6, rel=1e-6)
    # A little less damping would break the bound: lam is the smallest that keeps it.
    assert (eig.max() + 0.99 * lam) / (eig.min() + 0.99 * lam) > 1e6
    np.testing.assert_allclose(inf.hessian(), H + lam * np.eye(len(H)), atol=1e-12)
    G = _autograd_grads(head, X, y)
    ref = G @ np.linalg.solve(H + lam * np.eye(len(H)), G.T) / len(y)
    np.testing.assert_allclose(inf.self_influence(), np.diag(ref), rtol=1e-6)


def test_explicit_damping_is_used_as_given(tiny):
    inf = ExactHeadInfluence(tiny["head"], tiny["X"], tiny["y"], l2=L2, damping=0.5)
    H = _autograd_hessian(tiny) + 0.5 * np.eye(len(tiny["inf"].hessian()))
    G = _autograd_grads(tiny["head"], tiny["X"], tiny["y"])
    Gd = _autograd_grads(tiny["head"], tiny["Xd"], tiny["yd"])
    ref = Gd @ np.linalg.solve(H, G.T) / len(tiny["y"])
    np.testing.assert_allclose(
        inf.dev_influence(tiny["Xd"], tiny["yd"]), ref.mean(axis=0), rtol=1e-9, atol=1e-15
    )
    assert inf.diagnostics["damping"] == 0.5
