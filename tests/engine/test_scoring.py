"""score_training_set wires head, influence and ranking together consistently."""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine.synthetic import softmax_labels, softmax_problem
from workers.engine import ESTIMATORS, ExactHeadInfluence
from workers.engine.estimators import TEXT_ESTIMATORS
from workers.engine.head import fit_logistic_head, fit_without
from workers.engine.scoring import rank_descending, score_training_set

L2 = 0.01


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n, d, C = 200, 8, 3
    X, y, W = softmax_problem(rng, n, d, C, scale=2)
    Xd = rng.normal(size=(80, d))
    yd = softmax_labels(rng, Xd, W)
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
    assert res.estimator == "exact_head"
    assert res.diagnostics == inf.diagnostics
    assert res.diagnostics["damping"] == 0.0
    np.testing.assert_allclose(res.head.weight, head.weight, atol=1e-8)
    fracs = [f for f, _ in calls]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0
    assert {"fit", "top_k"} <= {s for _, s in calls}


def test_gold_training_rows_join_the_dev_set_as_influence_targets(data):
    """With ``gold_rows``, dev influence predicts the leave-one-out change of the mean loss over
    dev plus those rows (brute-force retraining), not over dev alone."""
    X, y, Xd, yd, C, flipped = data
    gold = y == 0  # a target set unlike dev, so that leaving it out would show
    gold[flipped] = False
    res = score_training_set(X, y, C, X_dev=Xd, y_dev=yd, gold_rows=gold, l2=L2, k=1)
    Xt, yt = np.concatenate([Xd, X[gold]]), np.concatenate([yd, y[gold]])
    head = res.head
    base = head.log_loss(Xt, yt).mean()
    items = np.arange(0, len(y), 7)
    actual = np.array(
        [fit_without(X, y, C, j, l2=L2, init=head).log_loss(Xt, yt).mean() - base for j in items]
    )
    dev_only = score_training_set(X, y, C, X_dev=Xd, y_dev=yd, l2=L2, k=1).dev_influence
    fit, fit_dev_only = (np.corrcoef(p[items], actual)[0, 1] for p in (res.dev_influence, dev_only))
    print(f"\nPearson with leave-one-out: {fit:.4f} (dev targets only: {fit_dev_only:.4f})")
    assert fit > 0.98
    assert fit_dev_only < fit - 0.1
    np.testing.assert_array_equal(res.suspicion, -res.dev_influence)


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


@pytest.mark.parametrize("name", sorted(set(ESTIMATORS) - TEXT_ESTIMATORS))
def test_every_estimator_is_selectable_by_name(data, name):
    """Embedding estimators here; ihvp (texts in) is selected by name in tests/test_cli.py."""
    X, y, Xd, yd, C, _ = data
    ids = np.arange(1000, 1000 + len(y))
    res = score_training_set(X, y, C, X_dev=Xd, y_dev=yd, l2=L2, k=2, estimator=name, ids=ids)
    ref = ESTIMATORS[name].fit(X, y, C, l2=L2, ids=ids)
    assert res.estimator == name
    assert res.diagnostics == ref.diagnostics
    np.testing.assert_allclose(res.probs, ref.model.predict_proba(X), atol=1e-8)
    np.testing.assert_allclose(res.probs, res.head.predict_proba(X), rtol=1e-12)
    np.testing.assert_allclose(res.loss, ref.model.log_loss(X, y), atol=1e-8)
    np.testing.assert_allclose(res.self_influence, ref.self_influence(), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(res.dev_influence, ref.dev_influence(Xd, yd), rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(res.suspicion, -res.dev_influence)
    top = ref.top_k(X, y, 2, exclude_self=np.arange(len(y)))
    np.testing.assert_array_equal(res.top.supporters_idx, top.supporters_idx)


def test_turnover_masks_follow_ids_not_row_order(data):
    X, y, _, _, C, _ = data
    ids = np.arange(500, 500 + len(y))
    perm = np.random.default_rng(0).permutation(len(y))
    res = score_training_set(X, y, C, l2=L2, estimator="turnover_dropout", ids=ids)
    again = score_training_set(
        X[perm], y[perm], C, l2=L2, estimator="turnover_dropout", ids=ids[perm]
    )
    np.testing.assert_allclose(again.self_influence, res.self_influence[perm], atol=1e-6)


@pytest.mark.parametrize("name", ["loss", "margin", "cleanlab"])
def test_baselines_rank_while_exact_head_gives_evidence(data, name):
    from workers.engine import baselines

    X, y, Xd, yd, C, _ = data
    res = score_training_set(X, y, C, X_dev=Xd, y_dev=yd, l2=L2, k=2, estimator=name, seed=3)
    exact = score_training_set(X, y, C, X_dev=Xd, y_dev=yd, l2=L2, k=2)
    expected = {
        "loss": lambda: baselines.loss_scores(exact.probs, y),
        "margin": lambda: baselines.margin_scores(exact.probs, y),
        "cleanlab": lambda: baselines.cleanlab_scores(X, y, C, seed=3),
    }[name]()
    assert res.estimator == name
    np.testing.assert_allclose(res.suspicion, expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(res.rank, rank_descending(res.suspicion))
    np.testing.assert_array_equal(res.top.supporters_idx, exact.top.supporters_idx)
    np.testing.assert_allclose(res.dev_influence, exact.dev_influence, rtol=1e-6, atol=1e-12)
    assert res.diagnostics == exact.diagnostics


def test_unknown_estimator_is_refused(data):
    X, y, _, _, C, _ = data
    with pytest.raises(ValueError, match="unknown estimator"):
        score_training_set(X, y, C, l2=L2, estimator="nope")
