"""``score_ranking`` on real MSLR judgments: the residual signals against independent
computations, evidence against leave-one-out refits, and the output's invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr
from sklearn.linear_model import Ridge

from tests.engine.test_listwise import mslr
from workers.engine.listwise import Standardisation, fit, ranking_problem
from workers.engine.listwise_removal import removal_gradients
from workers.engine.ranking import (
    OPPOSER,
    SUPPORTER,
    RankingEstimator,
    grade_gap,
    pointwise_residual,
    score_ranking,
)
from workers.engine.vif import leave_one_out


def test_grade_gap_by_sorting_each_query():
    X, y, q = mslr("train", 3)
    scores = X[:, :10] @ np.random.default_rng(0).normal(size=10)
    query = np.unique(q, return_inverse=True)[1]
    got = grade_gap(y, scores, query)
    for k in range(3):
        rows = np.flatnonzero(query == k)
        by_model = rows[np.argsort(-scores[rows], kind="stable")]
        expected = np.sort(y[rows])[::-1]  # the r-th best grade belongs at model rank r
        np.testing.assert_array_equal(got[by_model], np.abs(y[by_model] - expected))


def test_pointwise_residual_is_ridge():
    X, y, _ = mslr("train", 3)
    Z = Standardisation.of(X).apply(X)
    ridge = Ridge(alpha=1.0).fit(Z, y)
    np.testing.assert_allclose(pointwise_residual(Z, y), np.abs(y - ridge.predict(Z)), atol=1e-9)


@pytest.fixture(scope="module")
def scored():
    train, dev = mslr("train", 8), mslr("test", 10)
    return train, score_ranking(*train, dev=dev, evidence_k=3, evidence_targets=4, device="cpu")


def test_output_is_consistent(scored):
    (X, y, q), out = scored
    n = len(y)
    assert sorted(out.suspicion_rank) == list(range(1, n + 1))
    assert out.suspicion_rank[np.argmax(out.suspicion)] == 1
    assert out.estimator is RankingEstimator.GAP_POINTWISE
    assert out.influence is not None and out.influence.shape == (n,)
    assert (out.self_influence >= 0).all()
    assert np.array_equal(np.floor(out.residual), out.gap)
    assert 0 <= out.metrics["dev_ndcg@10"] <= 1
    without_dev = score_ranking(X, y, q, evidence_k=0, device="cpu")
    assert without_dev.influence is None
    np.testing.assert_allclose(without_dev.scores, out.scores)
    with pytest.raises(ValueError, match="dev"):
        score_ranking(X, y, q, estimator=RankingEstimator.DEV_HARM, device="cpu")


def test_evidence_predicts_refits(scored):
    """Evidence value of j for target r: the predicted change of r's own term, D_r(theta)ᵀ
    (theta without j - theta); checked against D_rᵀ of the refitted parameter change."""
    (X, y, q), out = scored
    query = np.unique(q, return_inverse=True)[1]
    assert out.evidence
    for target, source, role, rank, value in out.evidence:
        assert query[target] != query[source]
        assert (value > 0) == (role == SUPPORTER) and role in (SUPPORTER, OPPOSER)
        assert 1 <= rank <= 3
    pr = ranking_problem(X, y, q, standardisation=Standardisation.of(X), device="cpu")
    theta = torch.tensor(out.theta)
    D = removal_gradients(pr, theta)
    sources = sorted({e[1] for e in out.evidence})
    refits = leave_one_out(lambda w: fit(pr, w, start=theta), len(y), sources)
    moved = dict(zip(sources, (t - theta for t in refits), strict=True))
    predicted = np.array([e[4] for e in out.evidence])
    actual = np.array([(D[e[0]] @ moved[e[1]]).item() for e in out.evidence])
    assert (np.sign(predicted) == np.sign(actual)).all()
    assert pearsonr(predicted, actual)[0] >= 0.95  # the strongest pairs: first order is weakest
