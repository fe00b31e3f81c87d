"""Turn-over dropout in the paper's setting: the masks act on a wide hidden layer.

Kobayashi et al. (2020) mask the hidden units of a network, each training item with a fixed
mask of its own, so that the half of the units an item never switched on is a model that never
saw it. ``estimators/turnover.py`` masks the input features of a linear head, where both halves
learn nearly the same thing and the estimate measures at random level; here a ReLU layer of
``hidden`` units sits between the frozen sentence vectors and the classes, item i trains only
through ``2 m_i`` of it (``turnover_masks`` of its id), and the full layer predicts (the mean
over masks, by the 2x scaling). Trained as the paper trains: minibatch Adam for a fixed number
of epochs, seeded.

    influence(i -> t) = loss_t(mask 1 - m_i) - loss_t(mask m_i)

(> 0: i supports t, the project's convention ``loss_t(without i) - loss_t(with i)``). The
hidden layer's activations do not depend on the mask, so under mask m the logits are
``2 (m * h_t) W2^T + b2`` and under ``1 - m`` they are ``2 h_t W2^T + b2`` minus the first
part: one product per block of items gives both. Used by ``bench/turnover_mlp.py`` (detection,
the paper's data-cleansing experiment, fidelity against retraining); not a product ranking
until it measures better than random there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional

from ._device import resolve_device, to_tensor
from .estimators.turnover import turnover_masks


@dataclass
class TurnoverMLP:
    """A one-hidden-layer head trained with turn-over dropout; ``masks`` are the training
    items' (n, hidden) 0/1 masks, in training order."""

    w1: Tensor  # (hidden, d)
    b1: Tensor
    w2: Tensor  # (classes, hidden)
    b2: Tensor
    masks: Tensor

    def hidden(self, X: np.ndarray | Tensor) -> Tensor:
        x = to_tensor(X, torch.float32, self.w1.device)
        return torch.relu(x @ self.w1.T + self.b1)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(self.hidden(X) @ self.w2.T + self.b2, 1).double().cpu().numpy()

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        return float((self.predict_proba(X).argmax(1) == np.asarray(y)).mean())

    def self_influence(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """loss_i(half without i) - loss_i(half with i) for the training items (X, y in
        training order): how far the item's own half memorised its label."""
        with torch.no_grad():
            h = self.hidden(X)
            own = 2.0 * (self.masks * h) @ self.w2.T
            full = 2.0 * h @ self.w2.T
            target = to_tensor(y, torch.int64, h.device)
            seen = functional.cross_entropy(own + self.b2, target, reduction="none")
            unseen = functional.cross_entropy(full - own + self.b2, target, reduction="none")
            return (unseen - seen).double().cpu().numpy()

    def influence(self, X_t: np.ndarray, y_t: np.ndarray, *, block: int = 512) -> np.ndarray:
        """(n,) mean over the targets (X_t, y_t) of influence(i -> t), for every training
        item i: the predicted change of the targets' mean loss without i (< 0: harmful)."""
        with torch.no_grad():
            h = self.hidden(X_t)  # (T, H)
            target = to_tensor(y_t, torch.int64, h.device)
            # per target and class, the hidden units' contributions: (T * C, H)
            parts = (h[:, None, :] * self.w2[None, :, :]).reshape(-1, h.shape[1])
            full = 2.0 * (h @ self.w2.T)  # (T, C)
            out = []
            for lo in range(0, len(self.masks), block):
                own = 2.0 * (self.masks[lo : lo + block] @ parts.T).reshape(-1, *full.shape)
                seen = _cross_entropy(own + self.b2, target)
                unseen = _cross_entropy(full - own + self.b2, target)
                out.append((unseen - seen).mean(1))
            return torch.cat(out).double().cpu().numpy()


def _cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """(items, T, C) logits -> (items, T) cross-entropy at the targets' labels."""
    picked = logits.gather(2, target[None, :, None].expand(len(logits), -1, 1))[..., 0]
    return torch.logsumexp(logits, 2) - picked


def fit_turnover_mlp(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    ids: np.ndarray,
    *,
    hidden: int = 512,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    device: str | None = None,
) -> TurnoverMLP:
    """Train the head by minibatch Adam, item i always through ``2 m_i`` of the hidden layer
    (``m_i`` from its id and ``seed``); ``seed`` also fixes the initialisation and batches."""
    dev = resolve_device(device)
    generator = torch.Generator().manual_seed(seed)
    x = to_tensor(X, torch.float32, dev)
    target = to_tensor(y, torch.int64, dev)
    masks = to_tensor(turnover_masks(ids, hidden, seed=seed), torch.float32, dev)
    first = torch.nn.Linear(x.shape[1], hidden)
    second = torch.nn.Linear(hidden, n_classes)
    with torch.no_grad():  # the default initialisation, drawn from this run's generator
        for layer in (first, second):
            bound = 1.0 / np.sqrt(layer.in_features)
            for p in (layer.weight, layer.bias):
                p.copy_(torch.rand(p.shape, generator=generator) * 2 * bound - bound)
    first, second = first.to(dev), second.to(dev)
    params = [*first.parameters(), *second.parameters()]
    optimiser = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        for rows in torch.randperm(len(x), generator=generator).split(batch_size):
            rows = rows.to(dev)
            logits = second(2.0 * masks[rows] * torch.relu(first(x[rows])))
            loss = functional.cross_entropy(logits, target[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return TurnoverMLP(
        first.weight.detach(),
        first.bias.detach(),
        second.weight.detach(),
        second.bias.detach(),
        masks,
    )
