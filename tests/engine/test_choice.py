"""The noise check follows the data: on two kinds of synthetic silver labels (flipped at
random; one class relabelled wherever a feature is high, a labelling rule's error) it calls
the first random and the second patterned, and the ranking it would serve finds more of the
wrong labels than the other one in each case. Its figures are what they say: the held-out
dev loss gains of refits computed here directly."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pytest
from scipy.stats import rankdata

from app.core.config import Settings
from workers.engine.baselines import cleanlab_scores_with_info
from workers.engine.choice import (
    MIN_DEV,
    NOISE_CHECK,
    NoiseCheck,
    check_noise,
    serve_by_noise_check,
)
from workers.engine.estimators import ExactHeadInfluence
from workers.engine.head import fit_logistic_head
from workers.engine.scoring import rank_descending, score_training_set

L2 = 1e-2


def silver_set(seed: int, noise: str):
    """Two Gaussian classes in 60 dimensions, 1,000 silver training items, 120 gold dev."""
    rng = np.random.default_rng(seed)
    mu = np.zeros(60)
    mu[:6] = 0.5

    def draw(m: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, m)
        return rng.normal(size=(m, 60)) + np.where(y[:, None] == 1, mu, -mu), y

    (X, gold), (X_dev, y_dev) = draw(1000), draw(120)
    y = gold.copy()
    if noise == "random":
        flipped = rng.choice(len(y), 150, replace=False)
        y[flipped] = 1 - y[flipped]
    else:
        y[(gold == 1) & (X[:, 1] > 0.3)] = 0
    return X, y, gold, X_dev, y_dev


def found_at_10(suspicion: np.ndarray, wrong: np.ndarray) -> float:
    top = np.argsort(-suspicion, kind="stable")[: len(suspicion) // 10]
    return float(wrong[top].sum() / wrong.sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("noise", ["random", "patterned"])
def test_noise_check_follows_the_data(seed, noise):
    X, y, gold, X_dev, y_dev = silver_set(seed, noise)
    cleanlab = cleanlab_scores_with_info(X, y, 2, seed=seed)
    settings = Settings()
    options = {"share": settings.noise_check_share, "margin": settings.noise_check_margin}
    check = check_noise(X, y, 2, X_dev, y_dev, cleanlab, l2=L2, seed=seed, **options)
    assert check.patterned == (noise == "patterned"), check
    wrong = y != gold
    dev_harm = -ExactHeadInfluence.fit(X, y, 2, l2=L2).dev_influence(X_dev, y_dev)
    served, other = (
        (dev_harm, cleanlab.suspicion) if check.patterned else (cleanlab.suspicion, dev_harm)
    )
    assert found_at_10(served, wrong) > found_at_10(other, wrong)


@pytest.mark.parametrize("noise", ["random", "patterned"])
def test_the_default_ranking_serves_what_the_check_says(noise):
    """What a new project and `assay score` get with nothing changed: the noise_check policy
    over the exact head's run, serving its influence on the gold dev set for patterned errors
    and cleanlab for random ones, with the figures it decided on; without a dev set,
    cleanlab."""
    X, y, _, X_dev, y_dev = silver_set(3, noise)
    settings = Settings()
    assert settings.default_estimator == NOISE_CHECK
    run = score_training_set(X, y, 2, X_dev=X_dev, y_dev=y_dev, l2=L2, estimator="exact_head")
    serve = partial(
        serve_by_noise_check,
        result=run,
        X=X,
        y=y,
        n_classes=2,
        X_dev=X_dev,
        y_dev=y_dev,
        share=settings.noise_check_share,
        margin=settings.noise_check_margin,
    )
    result, choice = serve()
    assert result.estimator == NOISE_CHECK
    assert choice.served == ("exact_head" if noise == "patterned" else "cleanlab")
    served = -run.dev_influence if noise == "patterned" else choice.cleanlab.suspicion
    np.testing.assert_array_equal(result.suspicion, served)
    np.testing.assert_array_equal(result.rank, rank_descending(served))
    np.testing.assert_array_equal(result.dev_influence, run.dev_influence)  # evidence unchanged
    metrics = choice.metrics()
    assert metrics["noise_check_gain_influence"] == choice.check.gain_influence
    assert ("follow a pattern" in metrics["ranking_reason"]) == (noise == "patterned")
    assert metrics["noise_check_z"] == choice.check.z
    # with the gold rows (here the dev set), served influence becomes the expected gain of
    # re-annotating: harm x p_gold(wrong) / p_trained(wrong), computed here from both heads
    # fitted anew, on the head served with its biases re-fitted on dev as in the product
    calibrated = score_training_set(
        X, y, 2, X_dev=X_dev, y_dev=y_dev, l2=L2, estimator="exact_head", calibrate=True
    )
    weighted, weighted_choice = serve(gold=(X_dev, y_dev), result=calibrated)
    assert weighted_choice.served == choice.served
    assert weighted_choice.gain_weighted == (noise == "patterned")
    if noise == "patterned":
        rows = np.arange(len(y))
        p_gold = fit_logistic_head(X_dev, y_dev, 2, l2=L2).predict_proba(X)[rows, y]
        p_trained = fit_logistic_head(X, y, 2, l2=L2).predict_proba(X)[rows, y]
        gain = -calibrated.dev_influence * (1 - p_gold) / (1 - p_trained)
        np.testing.assert_allclose(weighted.suspicion, gain, rtol=1e-9)
        assert weighted_choice.metrics()["ranking_gain_weighted"] == 1.0
        assert "expected gain of re-annotating" in weighted_choice.reason
    else:
        np.testing.assert_array_equal(weighted.suspicion, result.suspicion)  # cleanlab
    alone = score_training_set(X, y, 2, l2=L2, estimator="exact_head")
    for dev in ((None, None), (X_dev[: MIN_DEV - 1], y_dev[: MIN_DEV - 1])):
        result, choice = serve_by_noise_check(alone, X, y, 2, *dev, share=0.1, margin=3.0)
        assert choice.served == "cleanlab" and choice.check is None
        assert choice.reason.startswith(f"fewer than {MIN_DEV} gold dev items")
        np.testing.assert_array_equal(result.suspicion, choice.cleanlab.suspicion)


def test_the_check_reports_the_refits_gains():
    """gain_cleanlab is the mean drop of the gold dev cross-entropy from the head on every
    silver label to the head refitted without cleanlab's top 10% (both at cleanlab's tuned
    penalty), computed here from the refits themselves; influence's gain is bounded by what
    removing the same number of items can do, and the standard error is positive."""
    X, y, _, X_dev, y_dev = silver_set(4, "patterned")
    cleanlab = cleanlab_scores_with_info(X, y, 2, seed=4)
    check = check_noise(X, y, 2, X_dev, y_dev, cleanlab, l2=L2, share=0.1, margin=3.0)
    top = np.argsort(-cleanlab.suspicion, kind="stable")[:100]
    keep = np.setdiff1d(np.arange(len(y)), top)

    def dev_loss(rows: np.ndarray) -> float:
        head = fit_logistic_head(X[rows], y[rows], 2, l2=cleanlab.l2)
        return float(head.log_loss(X_dev, y_dev).mean())

    assert check.gain_cleanlab == pytest.approx(dev_loss(np.arange(len(y))) - dev_loss(keep))
    assert check.n_gold == len(y_dev) and check.standard_error > 0
    assert check.gain_influence > check.gain_cleanlab  # a labelling rule: influence's slice


def test_a_gap_within_the_margin_serves_cleanlab():
    """The gap is influence's gain minus cleanlab's in standard errors of their paired
    difference: 0.05 - 0.02 over 0.0088 is 3.41: patterned at a margin of 3, not at 3.5; a
    gap of the other sign is never patterned, and a zero standard error gives the gap's sign
    an infinite z."""
    check = NoiseCheck(0.02, 0.05, 0.0088, 600, share=0.1, margin=3.0)
    assert check.z == pytest.approx(0.03 / 0.0088)
    assert check.patterned
    assert not replace(check, margin=3.5).patterned
    assert not NoiseCheck(0.05, 0.02, 0.0088, 600, share=0.1, margin=0.0).patterned
    assert replace(check, standard_error=0.0).z == np.inf


@pytest.mark.parametrize("noise", ["random", "patterned"])
def test_with_fine_tuning_on_its_ranking_takes_cleanlabs_place(noise):
    """With a fine-tuned ranking given (``ASSAY_FINETUNE``), it is served where cleanlab
    would be, random noise or too little gold dev data, and never run where influence is
    served; the check itself stays on the frozen vectors, so it decides alike. Here the
    stand-in for the fine-tuned run is cleanlab at other folds (a real, different ranking)."""
    X, y, _, X_dev, y_dev = silver_set(3, noise)
    run = score_training_set(X, y, 2, X_dev=X_dev, y_dev=y_dev, l2=L2, estimator="exact_head")
    other = cleanlab_scores_with_info(X, y, 2, seed=9)
    calls: list[int] = []

    def finetuned():
        calls.append(1)
        return other

    options = {"share": 0.1, "margin": 3.0}
    result, choice = serve_by_noise_check(run, X, y, 2, X_dev, y_dev, **options)
    tuned, tuned_choice = serve_by_noise_check(
        run, X, y, 2, X_dev, y_dev, finetuned=finetuned, **options
    )
    assert tuned_choice.check == choice.check
    if noise == "patterned":
        assert tuned_choice.served == "exact_head" and not calls
        np.testing.assert_array_equal(tuned.suspicion, result.suspicion)
    else:
        assert tuned_choice.served == "cleanlab_finetuned" and len(calls) == 1
        assert tuned_choice.reason.endswith("so cleanlab on the encoder fine-tuned in folds")
        np.testing.assert_array_equal(tuned.suspicion, other.suspicion)
        assert not np.array_equal(other.suspicion, choice.cleanlab.suspicion)
    np.testing.assert_array_equal(tuned_choice.cleanlab.suspicion, choice.cleanlab.suspicion)
    alone = score_training_set(X, y, 2, l2=L2, estimator="exact_head")
    _, no_dev = serve_by_noise_check(alone, X, y, 2, None, None, finetuned=finetuned, **options)
    assert no_dev.served == "cleanlab_finetuned" and "fine-tuned in folds" in no_dev.reason


@pytest.mark.parametrize("noise", ["random", "patterned"])
def test_with_fine_tuning_on_served_influence_is_averaged_with_a_gold_judge(noise):
    """With a gold-only judge given (fine-tuning on), served influence is rank-averaged with
    its disbelief in each label, the weighted mean of mid-rank percentiles computed here with
    scipy; the judge is never run where cleanlab is served. Here the stand-in for the encoder
    fine-tuned on the gold rows is a head on the frozen vectors trained on the dev set (a real
    judge, one that never saw the silver labels)."""
    X, y, gold, X_dev, y_dev = silver_set(5, noise)
    run = score_training_set(X, y, 2, X_dev=X_dev, y_dev=y_dev, l2=L2, estimator="exact_head")
    doubt = 1.0 - fit_logistic_head(X_dev, y_dev, 2, l2=L2).predict_proba(X)[np.arange(len(y)), y]
    calls: list[int] = []

    def judge() -> np.ndarray:
        calls.append(1)
        return doubt

    options = {"share": 0.1, "margin": 3.0}
    plain, choice = serve_by_noise_check(run, X, y, 2, X_dev, y_dev, **options)
    averaged, averaged_choice = serve_by_noise_check(
        run, X, y, 2, X_dev, y_dev, gold_finetuned=judge, gold_finetuned_weight=0.7, **options
    )
    assert averaged_choice.served == choice.served
    if noise == "patterned":
        n = len(y)
        expected = 0.3 * (rankdata(plain.suspicion) - 0.5) / n + 0.7 * (rankdata(doubt) - 0.5) / n
        np.testing.assert_allclose(averaged.suspicion, expected)
        ordered = expected[np.argsort(averaged.rank)]  # most suspicious first, up to rounding
        assert np.all(np.diff(ordered) <= 1e-12)
        assert len(calls) == 1 and averaged_choice.gold_finetuned
        assert averaged_choice.metrics()["ranking_gold_finetuned"] == 1.0
        assert "encoder fine-tuned on the gold rows alone" in averaged_choice.reason
        assert "(weight 0.7 to the latter)" in averaged_choice.reason
        wrong = y != gold  # the two judges together find more than influence alone here
        assert found_at_10(expected, wrong) > found_at_10(plain.suspicion, wrong)
    else:
        assert not calls and not averaged_choice.gold_finetuned
        np.testing.assert_array_equal(averaged.suspicion, plain.suspicion)
        assert "gold rows alone" not in averaged_choice.reason


def test_the_fine_tuning_hint_gives_its_cost():
    X, y, *_ = silver_set(3, "random")
    run = score_training_set(X, y, 2, l2=L2, estimator="exact_head")
    _, choice = serve_by_noise_check(run, X, y, 2, None, None, share=0.1, margin=3.0)
    assert choice.finetune_hint == "" and "finetune_hint" not in choice.metrics()
    for seconds, cost in ((30.0, "under a minute"), (545.0, "about 9 min")):
        hinted = replace(choice, finetune_estimate_s=seconds)
        assert f"may let cleanlab find more random label errors: {cost} for" in (
            hinted.finetune_hint
        )
        assert hinted.metrics()["finetune_estimate_s"] == seconds
