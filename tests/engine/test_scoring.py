"""score_training_set wires head, influence and ranking together consistently."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from workers.engine import ExactHeadInfluence
from workers.engine.head import fit_logistic_head
from workers.engine.scoring import rank_descending, score_training_set

L2 = 0.01


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n, d, C = 200, 8, 3
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(C, d)) * 2
    y = np.array([rng.choice(C, p=p) for p in softmax(X @ W.T, axis=1)])
    Xd = rng.normal(size=(80, d))
    yd = np.array([rng.choice(C, p=p) for p in softmax(Xd @ W.T, axis=1)])
    flipped = rng.choice(n, 20, replace=False)
    y[flipped] = (y[flipped] + 1) % C
    return X, y, Xd, yd, C, flipped


def test_rank_descending():
    np.testing.assert_array_equal(rank_descending(np.array([0.1, 3.0, -1.0, 3.0])), [3, 1, 4, 2])


def test_with_dev_set(data):
    X, y, Xd, yd, C, _ = data
    calls: list[tuple[float, str]] = []
    res = score_training_set(
        X, y, C, X_dev=Xd, y_dev=yd, l2=L2, k=3, progress=lambda f, s: calls.append((f, s))
    )
    head = fit_logistic_head(X, y, C, l2=L2)
    inf = ExactHeadInfluence(head, X, y, l2=L2)
    np.testing.assert_allclose(res.probs, head.predict_proba(X), atol=1e-8)
    np.testing.assert_array_equal(res.predicted, res.probs.argmax(axis=1))
    np.testing.assert_allclose(res.loss, -np.log(res.probs[np.arange(len(y)), y]), atol=1e-8)
    np.testing.assert_allclose(res.self_influence, inf.self_influence(), rtol=1e-6)
    np.testing.assert_allclose(res.dev_influence, inf.dev_influence(Xd, yd), rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(res.suspicion, -res.dev_influence)
    assert res.rank[np.argmax(res.suspicion)] == 1
    assert sorted(res.rank) == list(range(1, len(y) + 1))
    assert res.top.supporters_idx.shape == (len(y), 3)
    assert not (res.top.supporters_idx == np.arange(len(y))[:, None]).any()
    assert not (res.top.opposers_idx == np.arange(len(y))[:, None]).any()
    assert res.l2 == L2
    np.testing.assert_allclose(res.head.weight, head.weight, atol=1e-8)
    fracs = [f for f, _ in calls]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0
    assert {"fit", "top_k"} <= {s for _, s in calls}


def test_without_dev_set_ranks_by_self_influence(data):
    X, y, _, _, C, _ = data
    res = score_training_set(X, y, C, l2=L2, k=2)
    assert res.dev_influence is None
    np.testing.assert_array_equal(res.suspicion, res.self_influence)
    np.testing.assert_array_equal(res.rank, rank_descending(res.self_influence))


def test_flipped_labels_rank_high(data):
    """Sanity on planted noise: flipped items are over-represented among the most suspicious."""
    X, y, Xd, yd, C, flipped = data
    is_flipped = np.zeros(len(y), dtype=bool)
    is_flipped[flipped] = True
    for res in (
        score_training_set(X, y, C, X_dev=Xd, y_dev=yd, l2=L2),
        score_training_set(X, y, C, l2=L2),
    ):
        assert is_flipped[res.rank <= 20].mean() >= 3 * is_flipped.mean()
