"""Small random classification problems for the exactness tests (independent of real data)."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax


def softmax_labels(rng: np.random.Generator, X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Labels drawn from softmax(X Wᵀ): noisy, so no head separates them perfectly."""
    return np.array([rng.choice(len(W), p=p) for p in softmax(X @ W.T, axis=1)])


def softmax_problem(
    rng: np.random.Generator, n: int, d: int, C: int, *, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian inputs (n, d), true weights (C, d) times ``scale``, and sampled labels."""
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(C, d)) * scale
    return X, softmax_labels(rng, X, W), W


def linear_sampler(rng: np.random.Generator, d: int, noise: float):
    """Draws (X, y) from one fixed random hyperplane, with Gaussian noise on the margin: gold
    labels of a binary problem whose splits (train, dev, test) share their truth."""
    w = rng.normal(size=d)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        X = rng.normal(size=(n, d))
        return X, (X @ w + noise * rng.normal(size=n) > 0).astype(np.int64)

    return draw
