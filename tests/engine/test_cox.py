"""The Cox model against lifelines and finite differences, on the bundled rossi and gbsg2 data;
score_survival's dev influence against refitting without each record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from lifelines import CoxPHFitter
from lifelines.utils import concordance_index as lifelines_c
from scipy.stats import rankdata

from tests.engine.survival_data import load, untie
from workers.engine.covariates import fit_covariates
from workers.engine.cox import (
    DEFAULT_ESTIMATOR,
    OPPOSER,
    SUPPORTER,
    SurvivalData,
    SurvivalEstimator,
    breslow_derivatives,
    concordance_index,
    cox_loss,
    fit_cox,
    residuals,
    score_survival,
)

PENALTY = 0.01


def standardised(x: np.ndarray) -> np.ndarray:
    """Every column standardised (one-hot ones too), so lifelines' internal standardisation is
    the identity and its penalty acts on the same coefficients as ours."""
    return (x - x.mean(0)) / x.std(0, ddof=1)


def lifelines_fit(x: np.ndarray, t: np.ndarray, e: np.ndarray) -> tuple[CoxPHFitter, pd.DataFrame]:
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(x.shape[1])]).assign(T=t, E=e)
    cph = CoxPHFitter(penalizer=PENALTY)  # its n * penalizer / 2 * |beta|^2 == our mean loss's
    return cph.fit(frame, "T", "E", fit_options={"precision": 1e-14}), frame


@pytest.mark.parametrize("name", ["rossi", "gbsg2"])
@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_coefficients_match_lifelines_on_tie_free_data(name, ties):
    x, t, e = load(name)
    x, t = standardised(x), untie(t)
    fit = fit_cox(SurvivalData.build(x, t, e, "cpu"), penalty=PENALTY, ties=ties)
    cph, _ = lifelines_fit(x, t, e)
    np.testing.assert_allclose(fit.theta.numpy(), cph.params_.to_numpy(), rtol=0, atol=1e-6)


def test_efron_matches_lifelines_with_ties():
    x, t, e = load("rossi")  # weekly durations: many ties
    fit = fit_cox(SurvivalData.build(x, t, e, "cpu"), penalty=PENALTY, ties="efron")
    cph, _ = lifelines_fit(x, t, e)
    np.testing.assert_allclose(fit.theta.numpy(), cph.params_.to_numpy(), rtol=0, atol=1e-6)


def test_residuals_and_concordance_match_lifelines():
    x, t, e = load("gbsg2")
    x, t = standardised(x), untie(t)
    fit = fit_cox(SurvivalData.build(x, t, e, "cpu"), penalty=PENALTY)
    res = residuals(fit)
    cph, frame = lifelines_fit(x, t, e)
    theirs = cph.compute_residuals(frame, "martingale").sort_index()
    np.testing.assert_allclose(res.martingale, theirs["martingale"].to_numpy(), atol=1e-6)
    theirs = cph.compute_residuals(frame, "deviance").sort_index()
    np.testing.assert_allclose(res.deviance, theirs["deviance"].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(res.expected, e - res.martingale, atol=1e-12)
    np.testing.assert_allclose(res.risk, x @ fit.theta.numpy(), atol=1e-12)


@pytest.mark.parametrize("name", ["rossi", "gbsg2"])
def test_concordance_matches_lifelines_with_ties(name):
    x, t, e = load(name)
    risk = np.round(x[:, 0] + 0.5 * x[:, 1], 1)  # tied risks too
    assert concordance_index(t, risk, e) == pytest.approx(lifelines_c(t, -risk, e), abs=1e-12)


def test_breslow_derivatives_match_finite_differences_and_autodiff():
    x, t, e = load("rossi", slice(0, 200))
    data = SurvivalData.build(x, t, e, "cpu")
    rng = np.random.default_rng(0)
    theta = torch.tensor(rng.normal(0, 0.3, x.shape[1]))
    w = torch.tensor(rng.integers(0, 2, data.n), dtype=torch.float64)  # some records removed
    value, g, h = breslow_derivatives(data, PENALTY)(theta, w)
    loss = cox_loss(data, PENALTY, "breslow")
    assert float(value) == pytest.approx(float(loss(theta, w)), abs=1e-12)
    eps = 1e-6
    eye = torch.eye(len(theta), dtype=torch.float64)
    fd_g = torch.stack(
        [(loss(theta + eps * d, w) - loss(theta - eps * d, w)) / (2 * eps) for d in eye]
    )
    assert torch.allclose(g, fd_g, atol=1e-8)
    grad = lambda th: breslow_derivatives(data, PENALTY)(th, w)[1]  # noqa: E731
    fd_h = torch.stack([(grad(theta + eps * d) - grad(theta - eps * d)) / (2 * eps) for d in eye])
    assert torch.allclose(h, fd_h, atol=1e-7)
    assert torch.allclose(h, torch.func.hessian(loss)(theta, w), atol=1e-12)


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_zero_weight_removes_the_record_exactly(ties):
    x, t, e = load("rossi", slice(0, 80))
    data = SurvivalData.build(x, t, e, "cpu")
    theta = torch.linspace(-0.3, 0.3, x.shape[1], dtype=torch.float64)
    for i in (0, 17, 79):  # sorted positions: longest follow-up, a middle one, the shortest
        w = torch.ones(data.n, dtype=torch.float64)
        w[i] = 0.0
        row = int(data.order[i])
        keep = np.arange(len(t)) != row
        without = SurvivalData.build(x[keep], t[keep], e[keep], "cpu")
        expected = cox_loss(without, PENALTY, ties)(
            theta, torch.ones(without.n, dtype=torch.float64)
        )
        assert float(cox_loss(data, PENALTY, ties)(theta, w)) == pytest.approx(
            float(expected), abs=1e-13
        )


def test_score_survival_influence_matches_refitting():
    x, t, e = load("gbsg2")
    train, dev = np.arange(0, 480), np.arange(480, len(t))
    scores = score_survival(
        x[train], t[train], e[train], dev=(x[dev], t[dev], e[dev]), device="cpu"
    )
    dev_data = SurvivalData.build(x[dev], t[dev], e[dev], "cpu")
    target = cox_loss(dev_data, 0.0, "breslow")
    ones = torch.ones(dev_data.n, dtype=torch.float64)
    base = float(target(torch.tensor(scores.theta), ones))
    picked = np.argsort(scores.influence)[:10].tolist() + list(range(0, 480, 16))
    actual = []
    for i in picked:  # input rows: refit on the data without row i
        keep = np.arange(len(train)) != i
        refit = fit_cox(SurvivalData.build(x[train][keep], t[train][keep], e[train][keep], "cpu"))
        actual.append(float(target(refit.theta, ones)) - base)
    assert np.corrcoef(actual, scores.influence[picked])[0, 1] > 0.99
    assert scores.estimator == DEFAULT_ESTIMATOR == SurvivalEstimator.SELF_DEVIANCE
    # reciprocal-rank fusion (k = 60) of self-influence and |deviance residual|, by hand
    ranks = [rankdata(-s, method="ordinal") for s in (scores.self_influence, abs(scores.deviance))]
    np.testing.assert_allclose(scores.suspicion, sum(1.0 / (60.0 + r) for r in ranks))
    assert sorted(scores.rank) == list(range(1, len(train) + 1))
    assert scores.rank[np.argmax(scores.suspicion)] == 1
    assert set(scores.metrics) >= {"c_index_train", "c_index_dev", "dev_loss", "n_events"}
    roles = {role for _, _, role, _, _ in scores.evidence}
    assert roles == {SUPPORTER, OPPOSER}
    for target_row, source, role, _, value in scores.evidence:
        assert target_row != source and (value > 0) == (role == SUPPORTER)


def test_score_survival_without_dev_uses_self_influence():
    x, t, e = load("rossi", slice(0, 150))
    scores = score_survival(x, t, e, device="cpu")
    assert scores.influence is None
    assert scores.estimator == DEFAULT_ESTIMATOR
    baseline = score_survival(x, t, e, estimator=SurvivalEstimator.DEVIANCE, device="cpu")
    assert baseline.estimator == SurvivalEstimator.DEVIANCE
    np.testing.assert_array_equal(baseline.suspicion, np.abs(baseline.deviance))
    assert baseline.rank[np.argmax(baseline.suspicion)] == 1
    assert (scores.self_influence > 0).all()
    with pytest.raises(ValueError, match="dev"):
        score_survival(x, t, e, estimator=SurvivalEstimator.DEV_HARM, device="cpu")


def test_covariates_one_hot_and_standardise_with_training_statistics():
    rows = [
        {"age": "50", "grade": "II", "arm": "a"},
        {"age": "60", "grade": "I", "arm": "b"},
        {"age": "70", "grade": "III", "arm": "a"},
    ]
    x, names, transform = fit_covariates(rows, ["grade", "age"])
    assert names == ["grade=II", "grade=III", "age"]
    np.testing.assert_allclose(x[:, 2], [-1.0, 0.0, 1.0])  # mean 60, sd 10 (ddof=1)
    np.testing.assert_array_equal(x[:, :2], [[1, 0], [0, 0], [0, 1]])
    dev = transform.transform([{"age": "80", "grade": "IV"}])  # an unseen level: all zeros
    np.testing.assert_allclose(dev, [[0.0, 0.0, 2.0]])
    with pytest.raises(ValueError, match="age"):
        transform.transform([{"age": "", "grade": "I"}])
