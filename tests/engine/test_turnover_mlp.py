"""Turn-over dropout on a hidden layer: the blocked influence against a plain forward pass
per item and mask, determinism, and that flipped labels are the memorised ones."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional

from workers.engine.turnover_mlp import fit_turnover_mlp


def noisy_set(seed: int = 0):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, 300)
    centres = rng.normal(size=(3, 16)) * 1.5
    X = centres[y_true] + rng.normal(size=(300, 16))
    y = y_true.copy()
    flipped = rng.choice(300, 30, replace=False)
    y[flipped] = (y[flipped] + 1) % 3
    return X, y, y != y_true


def direct_loss(model, X, y, mask):
    """Cross-entropy of (X, y) through the hidden layer masked by ``mask``, written out."""
    h = torch.relu(torch.as_tensor(X, dtype=torch.float32) @ model.w1.T + model.b1)
    logits = (2.0 * mask * h) @ model.w2.T + model.b2
    return functional.cross_entropy(logits, torch.as_tensor(y), reduction="none")


def test_blocked_influence_equals_a_forward_pass_per_item_and_mask():
    X, y, _ = noisy_set()
    model = fit_turnover_mlp(X, y, 3, np.arange(300), hidden=64, epochs=3, seed=1)
    X_t, y_t = X[:40] + 0.1, y[:40]
    blocked = model.influence(X_t, y_t, block=7)  # blocks that do not divide n
    self_inf = model.self_influence(X, y)
    for i in (0, 5, 123, 299):
        m = model.masks[i]
        expected = (direct_loss(model, X_t, y_t, 1 - m) - direct_loss(model, X_t, y_t, m)).mean()
        assert abs(blocked[i] - expected.item()) < 1e-5
        own = direct_loss(model, X[i : i + 1], y[i : i + 1], m)
        flip = direct_loss(model, X[i : i + 1], y[i : i + 1], 1 - m)
        assert abs(self_inf[i] - (flip - own).item()) < 1e-5


def test_training_is_deterministic_per_seed_and_uses_each_items_mask():
    X, y, _ = noisy_set()
    a = fit_turnover_mlp(X, y, 3, np.arange(300), hidden=32, epochs=2, seed=3)
    b = fit_turnover_mlp(X, y, 3, np.arange(300), hidden=32, epochs=2, seed=3)
    c = fit_turnover_mlp(X, y, 3, np.arange(300), hidden=32, epochs=2, seed=4)
    assert torch.equal(a.w2, b.w2) and not torch.equal(a.w2, c.w2)
    assert 0.4 < float(a.masks.mean()) < 0.6
    # the full layer predicts: twice the masked halves' mean
    h = a.hidden(X)
    mean_halves = (2 * a.masks[0] * h + 2 * (1 - a.masks[0]) * h) / 2
    assert torch.allclose(mean_halves, h)


def test_flipped_labels_are_the_ones_their_half_memorised():
    X, y, wrong = noisy_set(2)
    model = fit_turnover_mlp(X, y, 3, np.arange(300), hidden=256, epochs=60, seed=0)
    self_inf = model.self_influence(X, y)
    assert self_inf[wrong].mean() > 2 * self_inf[~wrong].mean()
    top = np.argsort(-self_inf)[:30]
    assert wrong[top].mean() > 0.3  # random finds 0.1
