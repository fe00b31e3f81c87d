"""One call that turns embeddings + silver labels into suspicion scores and evidence."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .estimators import ExactHeadInfluence, TopK
from .head import LogisticHead, fit_logistic_head


@dataclass
class ScoreResult:
    """Everything the app stores per training item after a scoring run.

    ``suspicion`` is higher for items more likely mislabelled: ``-dev_influence`` when a gold
    dev set was given (harmful items first), else ``self_influence``. ``rank`` 1 is the most
    suspicious item. ``top`` holds, for every training item as target (at its own label), the
    training items that most support and most oppose it, itself excluded. ``head`` is the fitted
    classifier, kept so callers can evaluate it on held-out data.
    """

    probs: np.ndarray
    predicted: np.ndarray
    loss: np.ndarray
    self_influence: np.ndarray
    dev_influence: np.ndarray | None
    suspicion: np.ndarray
    rank: np.ndarray
    top: TopK
    l2: float
    head: LogisticHead


def rank_descending(scores: np.ndarray) -> np.ndarray:
    """1-based ranks with the largest score first; ties keep input order (deterministic)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    return rank


def score_training_set(
    X_train: np.ndarray,
    y_train: np.ndarray,
    n_classes: int,
    *,
    X_dev: np.ndarray | None = None,
    y_dev: np.ndarray | None = None,
    l2: float,
    k: int = 3,
    device: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> ScoreResult:
    """Fit the head on (X_train, y_train) and compute influence-based suspicion and evidence."""

    def report(frac: float, stage: str) -> None:
        if progress is not None:
            progress(frac, stage)

    y_train = np.asarray(y_train, dtype=np.int64)
    report(0.0, "fit")
    head = fit_logistic_head(X_train, y_train, n_classes, l2=l2, device=device)
    probs = head.predict_proba(X_train)
    loss = head.log_loss(X_train, y_train)
    report(0.15, "hessian")
    inf = ExactHeadInfluence(head, X_train, y_train, l2=l2, device=device)
    report(0.25, "self_influence")
    self_inf = inf.self_influence()
    dev_inf = None
    if X_dev is not None and y_dev is not None and len(X_dev):
        report(0.3, "dev_influence")
        dev_inf = inf.dev_influence(X_dev, y_dev)
    suspicion = -dev_inf if dev_inf is not None else self_inf.copy()
    report(0.35, "top_k")
    top = inf.top_k(
        X_train,
        y_train,
        k,
        exclude_self=np.arange(len(y_train)),
        progress=lambda f: report(0.35 + 0.65 * f, "top_k"),
    )
    report(1.0, "done")
    return ScoreResult(
        probs=probs,
        predicted=probs.argmax(axis=1),
        loss=loss,
        self_influence=self_inf,
        dev_influence=dev_inf,
        suspicion=suspicion,
        rank=rank_descending(suspicion),
        top=top,
        l2=float(l2),
        head=head,
    )
