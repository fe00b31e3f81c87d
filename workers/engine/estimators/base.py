"""The estimator interface, in the spirit of Captum's influence API.

An estimator is fitted once on a trained model and its training set, then answers queries:

- ``self_influence()``: (n_train,) how much each item's own loss rises if it is left out;
- ``influence(X_t, y_t)``: streams blocks of the (targets x train) matrix;
- ``dev_influence(X_dev, y_dev)``: (n_train,) influence on the mean loss of a gold dev set;
- ``top_k(X_t, y_t, k)``: the strongest supporters and opposers per target.

Sign convention, shared by every estimator: influence(j -> t) approximates
loss_t(trained without j) - loss_t(trained with j). Positive: j supports t. Negative: j opposes
t; on the dev loss, negative means j is harmful (InfFeed objective 2).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self

import numpy as np


class Classifier(Protocol):
    """What callers need from any estimator's model: probabilities and per-example losses."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...

    def log_loss(self, X: np.ndarray, y: np.ndarray) -> np.ndarray: ...


@dataclass
class TopK:
    """Per target, the k most positive (supporters) and most negative (opposers) train items.

    All arrays are (n_targets, k); supporters are sorted descending, opposers ascending (most
    harmful first). Indices refer to rows of the training set.
    """

    supporters_idx: np.ndarray
    supporters_val: np.ndarray
    opposers_idx: np.ndarray
    opposers_val: np.ndarray


class InfluenceEstimator(ABC):
    """Base class: subclasses implement ``self_influence`` and ``influence``.

    ``dev_influence`` and ``top_k`` have generic implementations over ``influence`` blocks;
    estimators override them where a closed form is cheaper. ``diagnostics`` reports what the
    estimator chose on its own (damping, number of checkpoints, ...), for the user to see.
    """

    name: ClassVar[str]
    diagnostics: dict[str, float]

    @abstractmethod
    def self_influence(self) -> np.ndarray: ...

    @abstractmethod
    def influence(self, X_t: np.ndarray, y_t: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]: ...

    def dev_influence(self, X_dev: np.ndarray, y_dev: np.ndarray) -> np.ndarray:
        total = None
        for _, block in self.influence(X_dev, y_dev):
            part = block.sum(axis=0)
            total = part if total is None else total + part
        return total / len(y_dev)

    def top_k(
        self,
        X_t: np.ndarray,
        y_t: np.ndarray,
        k: int,
        *,
        exclude_self: np.ndarray | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> TopK:
        """k strongest supporters and opposers for every target.

        ``exclude_self[t]`` is the training index of target t (or -1), so an item is never
        evidence for itself. ``progress`` receives the fraction of targets done.
        """
        m = len(y_t)
        parts: list[tuple[slice, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for sl, block in self.influence(X_t, y_t):
            block = np.array(block, dtype=np.float64, copy=True)
            hi, lo = block, block.copy()
            if exclude_self is not None:
                own = np.asarray(exclude_self)[sl]
                rows = np.nonzero(own >= 0)[0]
                hi[rows, own[rows]] = -np.inf
                lo[rows, own[rows]] = np.inf
            kk = min(k, block.shape[1] - (1 if exclude_self is not None else 0))
            sup = np.argsort(-hi, axis=1, kind="stable")[:, :kk]
            opp = np.argsort(lo, axis=1, kind="stable")[:, :kk]
            parts.append(
                (sl, sup, np.take_along_axis(hi, sup, 1), opp, np.take_along_axis(lo, opp, 1))
            )
            if progress is not None:
                progress(sl.stop / m)
        return TopK(
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
            np.concatenate([p[3] for p in parts]),
            np.concatenate([p[4] for p in parts]),
        )


class FittableEstimator(InfluenceEstimator):
    """An estimator that trains its own model, so it can be selected by name alone.

    ``fit`` trains ``model`` (the classifier used for predictions) on (X, y) and builds the
    estimator on it; ``retrain_without`` trains the same model without one item, which is the
    ground truth that ``workers.engine.fidelity`` compares the influence estimates with.
    """

    model: Classifier

    @classmethod
    @abstractmethod
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
    ) -> Self: ...

    @abstractmethod
    def retrain_without(self, index: int) -> Classifier: ...
