"""Turn-over dropout (Kobayashi et al. 2020, "Efficient Estimation of Influence of a Training
Instance"): every training item trains only its own half of the network, so the other half is
a model that never saw it, and influence is read off by running both halves.

Design: the dropout acts on the head's *input* features. Item i's mask m_i ∈ {0, 1}^d is a
seeded hash of its id (Bernoulli(0.5) per feature), and it is always trained on 2·m_i ⊙ x_i.
With fixed masks the training problem is plain L2 logistic regression on the masked inputs:
still convex, so it is solved to its optimum exactly like the exact head (deterministic, no
epochs or learning rate to tune, and the leave-one-out retraining the estimate is checked
against is exact too). A hidden layer would make the head non-convex and its retraining
seed-dependent, adding noise to every check, without making frozen sentence embeddings any
more separable. The bias is shared (not dropped), like the layers the paper does not mask.
At prediction time the full network W x + b is used (the mean over masks, thanks to the 2x
scaling), so the model is a plain ``LogisticHead``.

    influence(i → t) = loss_t(W, 2(1 - m_i) ⊙ x_t) - loss_t(W, 2 m_i ⊙ x_t)

The first half never trained on i, the second did, so positive means i supports t, matching
the convention loss_t(without i) - loss_t(with i). Logits under mask m are 2 (W ⊙ m) x_t + b
and those under 1 - m are 2 W x_t - 2 (W ⊙ m) x_t + b, so one matmul per block gives both.

Caveat, measured: on a linear head over dense sentence embeddings the two halves differ in
loss by far more than any single item's effect (and correlated features let the "unseen" half
adapt to i anyway), so estimates are mostly that difference. Against retraining without the
item: Spearman ~0.4 for self-influence, ~0.05 per (item, target) pair and for the dev loss
(tests/engine/test_estimators_turnover.py, test_fidelity.py). Prefer exact_head here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Self

import numpy as np
import torch

from .._device import resolve_device, to_tensor
from ..head import LogisticHead, fit_logistic_head, fit_without
from .blocked import BlockedEstimator

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijective, well-mixed uint64 hash (wraps modulo 2**64)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def turnover_masks(ids: np.ndarray, dim: int, *, seed: int = 0) -> np.ndarray:
    """Bernoulli(0.5) masks (n, dim) of 0.0/1.0, a pure function of (id, feature, seed).

    Depending only on the id (never on row order or on the other items) keeps an item's
    sub-network the same across re-scorings of a changing dataset.
    """
    ids = np.asarray(ids).astype(np.uint64)
    key = _splitmix64(ids ^ _splitmix64(np.array([seed], dtype=np.uint64)))
    bits = _splitmix64(key[:, None] + np.arange(dim, dtype=np.uint64)[None, :] * _GOLDEN)
    return (bits >> np.uint64(63)).astype(np.float64)


def fit_turnover_head(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    ids: np.ndarray,
    *,
    l2: float,
    seed: int = 0,
    device: str | None = None,
) -> LogisticHead:
    """Train the head with each item seeing only its own features: the optimum of
    mean_i CE(W (2 m_i ⊙ x_i) + b, y_i) + (l2/2)||[W | b]||² (see ``fit_logistic_head``)."""
    masks = turnover_masks(ids, np.shape(X)[1], seed=seed)
    return fit_logistic_head(
        2.0 * masks * np.asarray(X, dtype=np.float64), y, n_classes, l2=l2, device=device
    )


def _cross_entropy_from_margins(a: torch.Tensor) -> torch.Tensor:
    """CE from a = logits of the other classes minus the label's, (T, C-1, n): result (T, n).

    CE = log(1 + Σ_c exp a_c) = softplus(logsumexp_c a_c); for two classes that is softplus(a).
    """
    return torch.nn.functional.softplus(a[:, 0] if a.shape[1] == 1 else torch.logsumexp(a, 1))


class TurnoverDropoutInfluence(BlockedEstimator):
    """Influence from the two halves of a turn-over dropout head; needs no gradients."""

    name = "turnover_dropout"

    def __init__(
        self,
        head: LogisticHead,
        X_train: np.ndarray,
        y_train: np.ndarray,
        ids: np.ndarray,
        *,
        l2: float,
        seed: int = 0,
        device: str | None = None,
        block_size: int = 1024,
    ) -> None:
        self.device = resolve_device(device)
        self.model = head
        self.l2 = float(l2)
        self.seed = int(seed)
        self.block_size = int(block_size)
        self._X = np.asarray(X_train)
        self._y = np.asarray(y_train, dtype=np.int64)
        self.ids = np.asarray(ids)
        self.n = len(self._y)
        if len(self.ids) != self.n:
            raise ValueError("need one id per training item")
        masks = turnover_masks(self.ids, self._X.shape[1], seed=self.seed)
        self._X_masked = 2.0 * masks * self._X  # what each item was trained on
        self._M = to_tensor(masks, torch.float64, self.device)
        self._W = to_tensor(head.weight, torch.float64, self.device)
        self._b = to_tensor(head.bias, torch.float64, self.device)
        self.diagnostics = {"mask_density": float(masks.mean())}

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        y: np.ndarray,
        n_classes: int,
        *,
        l2: float,
        ids: np.ndarray | None = None,
        seed: int = 0,
        device: str | None = None,
        **options: Any,
    ) -> Self:
        """Train the turn-over head; ``ids`` (default: row numbers) choose each item's mask.

        Pass stable item ids so that an item keeps its sub-network when the dataset changes.
        ``options`` go to the constructor (``block_size``).
        """
        ids = np.arange(len(y)) if ids is None else np.asarray(ids)
        head = fit_turnover_head(X, y, n_classes, ids, l2=l2, seed=seed, device=device)
        return cls(head, X, y, ids, l2=l2, seed=seed, device=device, **options)

    def retrain_without(self, index: int) -> LogisticHead:
        """The turn-over head trained without item ``index`` (the others keep their masks)."""
        return fit_without(
            self._X_masked,
            self._y,
            self.model.n_classes,
            index,
            l2=self.l2,
            init=self.model,
            device=str(self.device),
        )

    def self_influence(self) -> np.ndarray:
        """loss_i(half without i) - loss_i(half with i): how much i's label is memorised."""
        X = to_tensor(self._X, torch.float64, self.device)
        y = to_tensor(self._y, torch.int64, self.device)
        own = 2.0 * (self._M * X) @ self._W.T
        full = 2.0 * X @ self._W.T
        loss_own = torch.nn.functional.cross_entropy(own + self._b, y, reduction="none")
        loss_flip = torch.nn.functional.cross_entropy(full - own + self._b, y, reduction="none")
        return (loss_flip - loss_own).cpu().numpy()

    def _blocks(self, X_t: np.ndarray, y_t: np.ndarray) -> Iterator[tuple[slice, torch.Tensor]]:
        X_t = to_tensor(X_t, torch.float64, self.device)
        y_t = to_tensor(y_t, torch.int64, self.device)
        C, d = self._W.shape
        for sl in self._target_slices(len(X_t), width=3 * (C - 1)):
            x, y = X_t[sl], y_t[sl]
            # Only logits relative to the label's matter: rows W_c - W_y for the C-1 others.
            others = torch.arange(C - 1, device=self.device)[None, :]
            others = others + (others >= y[:, None]).long()
            Wd = self._W[others] - self._W[y][:, None, :]  # (T, C-1, d)
            bd = (self._b[others] - self._b[y][:, None])[:, :, None]
            U = (Wd * x[:, None, :]).reshape(-1, d)
            own = 2.0 * (U @ self._M.T).reshape(len(x), C - 1, self.n)  # with m_i
            full = 2.0 * (Wd @ x[:, :, None])  # (T, C-1, 1): own + flipped
            with_i = _cross_entropy_from_margins(own + bd)
            yield sl, _cross_entropy_from_margins(full - own + bd) - with_i
