"""The noise check follows the data: on two kinds of synthetic silver labels (flipped at
random; one class relabelled wherever a feature is high, a labelling rule's error) it calls
the first random and the second patterned, and the ranking it would serve finds more of the
wrong labels than the other one in each case."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from app.core.config import Settings
from workers.engine.baselines import cleanlab_scores_with_info
from workers.engine.choice import NOISE_CHECK, NoiseCheck, check_noise, serve_by_noise_check
from workers.engine.estimators import ExactHeadInfluence
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
    check = check_noise(X, y, 2, X_dev, y_dev, cleanlab, margin=Settings().noise_check_margin)
    assert check.patterned == (noise == "patterned")
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
    result, choice = serve_by_noise_check(
        run, X, y, 2, X_dev, y_dev, margin=settings.noise_check_margin
    )
    assert result.estimator == NOISE_CHECK
    assert choice.served == ("exact_head" if noise == "patterned" else "cleanlab")
    served = -run.dev_influence if noise == "patterned" else choice.cleanlab.suspicion
    np.testing.assert_array_equal(result.suspicion, served)
    np.testing.assert_array_equal(result.rank, rank_descending(served))
    np.testing.assert_array_equal(result.dev_influence, run.dev_influence)  # evidence unchanged
    metrics = choice.metrics()
    assert metrics["noise_check_silver_agreement"] == choice.check.silver_agreement
    assert ("follow a pattern" in metrics["ranking_reason"]) == (noise == "patterned")
    assert metrics["noise_check_gap_z"] == choice.check.z
    alone = score_training_set(X, y, 2, l2=L2, estimator="exact_head")
    result, choice = serve_by_noise_check(alone, X, y, 2, None, None, margin=1.0)
    assert choice.served == "cleanlab" and choice.check is None
    np.testing.assert_array_equal(result.suspicion, choice.cleanlab.suspicion)


def test_a_gap_within_the_margin_serves_cleanlab():
    """The gap is measured in standard errors of two proportions: 73% of 4,000 silver labels
    against 70% of 600 gold ones is 3 points, 1.50 standard errors (sqrt(.73 * .27 / 4000 +
    .7 * .3 / 600) = 0.019982): patterned at a margin of 1, not at 1.6; a gap of the other sign
    is never patterned."""
    check = NoiseCheck(0.73, 0.70, 4000, 600, margin=1.0)
    assert check.z == pytest.approx(0.03 / 0.019982, rel=1e-4)
    assert check.patterned
    assert not replace(check, margin=1.6).patterned
    assert not NoiseCheck(0.70, 0.72, 4000, 600, margin=0.0).patterned
