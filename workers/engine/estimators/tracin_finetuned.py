"""TracInCP over a fine-tuning run of the whole encoder, on the last layer's gradients.

The frozen-encoder estimators all rank with the same linear head on fixed sentence vectors, and
on randomly flipped labels none of them gets past that head's accuracy. Fine-tuning every
transformer layer gives a better classifier (dev accuracy 0.81 vs 0.76 on Rotten Tomatoes),
and TracIn (Pruthi et al. 2020) reads the trajectory, not just the end point: an item whose
label fights the rest of the data keeps a large gradient in every epoch, while a memorised one
would look harmless at the end.

    influence(j → t) = (1/n) Σ_c lr ∇_W L_t(θ_c) · ∇_W L_j(θ_c)

with c the end of every epoch and W = [weight | bias] of the linear head: the per-example
gradient of the last layer, as in the TracIn paper's experiments. Per example it is the outer
product r ⊗ [z, 1] of the residual r = p - onehot(y) and the sentence vector z that the head
reads at that checkpoint, so the whole estimator keeps one (n, checkpoints·C·(d+1)) matrix of
scaled gradients G, and influence is G_t G_jᵀ. Sign convention of ``base.InfluenceEstimator``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Self

import numpy as np
import torch

from .._device import to_tensor
from ..finetune import FineTunedClassifier, TrainLayers, fit_finetuned_classifier
from .blocked import BlockedEstimator

DEFAULT_TRAIN_LAYERS: TrainLayers = "all"
DEFAULT_EPOCHS = 2
DEFAULT_LR = 3e-5
DEFAULT_BATCH_SIZE = 16


class FineTunedTracIn(BlockedEstimator):
    """Last-layer TracIn over the epoch checkpoints of ``model`` (trained on exactly
    ``(X_train, y_train)`` with ``keep_checkpoints=True``)."""

    name = "tracin_finetuned"

    def __init__(
        self,
        model: FineTunedClassifier,
        X_train: Sequence[str] | np.ndarray,
        y_train: np.ndarray,
        *,
        block_size: int = 1024,
    ) -> None:
        if not model.checkpoints:
            raise ValueError("tracin_finetuned needs a model trained with keep_checkpoints=True")
        self.model = model
        self.device = model.device
        self.block_size = int(block_size)
        self._X = np.asarray(list(X_train), dtype=object)
        self._y = np.asarray(y_train, dtype=np.int64)
        self.n = len(self._y)
        self._scale = float(np.sqrt(model.config.lr / self.n))
        self._G = self.gradients(self._X, self._y)
        self.diagnostics = {
            "checkpoints": float(len(model.checkpoints)),
            "lr": float(model.config.lr),
            "gradient_dim": float(self._G.shape[1]),
        }

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
        train_layers: TrainLayers = DEFAULT_TRAIN_LAYERS,
        epochs: int = DEFAULT_EPOCHS,
        lr: float = DEFAULT_LR,
        batch_size: int = DEFAULT_BATCH_SIZE,
        **options: Any,
    ) -> Self:
        """Fine-tune on texts ``X`` keeping every epoch's checkpoint; ``encoder_path`` and
        ``max_length`` go to ``fit_finetuned_classifier``, the rest to the constructor.
        ``ids`` are not needed: batches follow ``seed``."""
        tune = {k: options.pop(k) for k in ("encoder_path", "max_length") if k in options}
        model = fit_finetuned_classifier(
            list(X),
            y,
            n_classes,
            train_layers=train_layers,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            l2=l2,
            seed=seed,
            device=device,
            keep_checkpoints=True,
            **tune,
        )
        return cls(model, X, y, **options)

    def retrain_without(self, index: int) -> FineTunedClassifier:
        """The same fine-tuning run (seed, batches, start) with item ``index`` weighted 0."""
        w = np.ones(self.n)
        w[index] = 0.0
        return self.model.retrained(list(self._X), self._y, sample_weight=w)

    def gradients(self, X: Sequence[str] | np.ndarray, y: np.ndarray) -> torch.Tensor:
        """(m, checkpoints·C·(d+1)): √(lr/n) ∇_W L at every checkpoint, side by side."""
        texts = list(X)
        yt = to_tensor(np.asarray(y, dtype=np.int64), torch.int64, self.device)
        parts = []
        for checkpoint in self.model.checkpoints:
            z, logits = checkpoint.head_inputs_and_logits(texts)
            r = torch.softmax(logits.double(), dim=1)
            r[torch.arange(len(yt), device=self.device), yt] -= 1.0
            za = torch.cat(
                [z.double(), torch.ones(len(z), 1, dtype=torch.float64, device=z.device)], 1
            )
            parts.append((r[:, :, None] * za[:, None, :]).reshape(len(yt), -1))
        return self._scale * torch.cat(parts, dim=1)

    def self_influence(self) -> np.ndarray:
        """(1/n) Σ_c lr ||∇_W L_i(θ_c)||²."""
        return (self._G**2).sum(1).cpu().numpy()

    def dev_influence(self, X_dev: Any, y_dev: np.ndarray) -> np.ndarray:
        """Influence on the mean dev loss: G_j · mean_t G_t (one pass over the dev set)."""
        return (self._G @ self.gradients(X_dev, y_dev).mean(0)).cpu().numpy()

    def _blocks(self, X_t: Any, y_t: np.ndarray) -> Iterator[tuple[slice, torch.Tensor]]:
        y_t = np.asarray(y_t, dtype=np.int64)
        X_arr = np.asarray(list(X_t), dtype=object)
        is_train = (
            len(y_t) == self.n and np.array_equal(y_t, self._y) and bool(np.all(X_arr == self._X))
        )
        G_t = self._G if is_train else self.gradients(X_arr, y_t)
        for sl in self._target_slices(len(y_t)):
            yield sl, G_t[sl] @ self._G.T
