"""The noise check follows the data: on two kinds of synthetic silver labels (flipped at
random; one class relabelled wherever a feature is high, a labelling rule's error) it calls
the first random and the second patterned, and the ranking it would serve finds more of the
wrong labels than the other one in each case."""

from __future__ import annotations

import numpy as np
import pytest

from workers.engine.baselines import cleanlab_scores_with_info
from workers.engine.choice import check_noise
from workers.engine.estimators import ExactHeadInfluence

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
    check = check_noise(X, y, 2, X_dev, y_dev, cleanlab)
    assert check.patterned == (noise == "patterned")
    wrong = y != gold
    dev_harm = -ExactHeadInfluence.fit(X, y, 2, l2=L2).dev_influence(X_dev, y_dev)
    served, other = (
        (dev_harm, cleanlab.suspicion) if check.patterned else (cleanlab.suspicion, dev_harm)
    )
    assert found_at_10(served, wrong) > found_at_10(other, wrong)
