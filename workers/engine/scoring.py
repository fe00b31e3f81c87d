"""One call that turns embeddings + silver labels into suspicion scores and evidence."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .estimators import ESTIMATORS, Classifier, ExactHeadInfluence, FittableEstimator, TopK

BASELINES = ("loss", "margin", "cleanlab")


@dataclass
class ScoreResult:
    """Everything the app stores per training item after a scoring run.

    ``suspicion`` is higher for items more likely mislabelled. For an influence estimator it is
    ``-dev_influence`` when a gold dev set was given (harmful items first; the influence is on
    the dev loss plus the ``gold_rows``' loss, see ``influence_targets``), else
    ``self_influence``; for a baseline (loss, margin, cleanlab) it is the baseline's score.
    ``rank`` 1 is the most suspicious item. ``top`` holds, for every training item as target
    (at its own label), the training items that most support and most oppose it, itself
    excluded. ``estimator`` names what produced ``suspicion``; influence and evidence come from
    that estimator, or from exact_head for a baseline. ``head`` is the model that made
    ``probs`` (a ``LogisticHead`` for every built-in estimator), kept so callers can evaluate it
    on held-out data. ``diagnostics`` is what the estimator chose on its own (e.g. damping).
    ``influence`` is the fitted estimator behind the evidence, for further queries (InfFeed).
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
    head: Classifier
    estimator: str
    diagnostics: dict[str, float]
    influence: FittableEstimator


def rank_descending(scores: np.ndarray) -> np.ndarray:
    """1-based ranks with the largest score first; ties keep input order (deterministic)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    return rank


def _baseline_suspicion(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    probs: np.ndarray,
    *,
    seed: int,
    device: str | None,
) -> np.ndarray:
    # Imported here: the baselines pull in cleanlab and scikit-learn, which influence runs skip.
    from . import baselines

    if name == "loss":
        return baselines.loss_scores(probs, y)
    if name == "margin":
        return baselines.margin_scores(probs, y)
    return baselines.cleanlab_scores(X, y, n_classes, seed=seed, device=device)


def influence_targets(
    X_dev: np.ndarray,
    y_dev: np.ndarray,
    X_train: np.ndarray,
    y_train: np.ndarray,
    gold_rows: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The gold items whose mean loss the ranking's influence is taken on: the dev set, plus the
    training items whose label is gold (``gold_rows``: imported gold, or reviewed).

    Why: the direction that harm is measured along is estimated from these items, and a dev
    set of a thousand leaves it noisy; the gold training labels are as trustworthy. On the
    triage benchmark this ranks better on every seeded split (``bench/triage.py``). A gold row's
    own loss is then among the targets, so its score leans helpful; gold rows are never queued.
    """
    if gold_rows is None or not np.any(gold_rows):
        return X_dev, np.asarray(y_dev, dtype=np.int64)
    gold = np.asarray(gold_rows, dtype=bool)
    X_train = X_train if isinstance(X_train, np.ndarray) else np.asarray(X_train, dtype=object)
    return (
        np.concatenate([X_dev, X_train[gold]]),
        np.concatenate([np.asarray(y_dev, dtype=np.int64), np.asarray(y_train)[gold]]),
    )


def score_training_set(
    X_train: np.ndarray,
    y_train: np.ndarray,
    n_classes: int,
    *,
    X_dev: np.ndarray | None = None,
    y_dev: np.ndarray | None = None,
    gold_rows: np.ndarray | None = None,
    calibrate: bool = False,
    l2: float,
    k: int = 3,
    estimator: str = "exact_head",
    ids: np.ndarray | None = None,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    device: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> ScoreResult:
    """Fit ``estimator``'s model on (X_train, y_train); compute suspicion and evidence with it.

    ``estimator`` is a name in ``ESTIMATORS`` or one of ``BASELINES``. ``ids`` are stable item
    ids (turnover_dropout derives each item's dropout mask from them; default: row numbers).
    ``seed`` drives every random choice (SGD batches, projections, masks, cleanlab's folds), and
    ``options`` go to the estimator's ``fit`` (e.g. ``{"epochs": 10}`` for tracin). With a dev
    set, influence is taken on it and on the ``gold_rows`` training items (``influence_targets``),
    and ``calibrate`` serves the head with its biases re-fitted on dev, influence then being on
    that model (``ExactHeadInfluence.calibrated``; the exact head and the baselines only, the
    other estimators' models are served as trained).
    """
    if estimator not in ESTIMATORS and estimator not in BASELINES:
        known = ", ".join([*ESTIMATORS, *BASELINES])
        raise ValueError(f"unknown estimator '{estimator}' (known: {known})")

    def report(frac: float, stage: str) -> None:
        if progress is not None:
            progress(frac, stage)

    y_train = np.asarray(y_train, dtype=np.int64)
    report(0.0, "fit")
    cls: type[FittableEstimator] = ESTIMATORS.get(estimator, ExactHeadInfluence)
    inf = cls.fit(
        X_train, y_train, n_classes, l2=l2, ids=ids, seed=seed, device=device, **(options or {})
    )
    has_dev = X_dev is not None and y_dev is not None and len(X_dev) > 0
    if calibrate and has_dev and isinstance(inf, ExactHeadInfluence):
        inf = inf.calibrated(X_dev, y_dev)
    probs = inf.model.predict_proba(X_train)
    loss = inf.model.log_loss(X_train, y_train)
    report(0.25, "self_influence")
    self_inf = inf.self_influence()
    dev_inf = None
    if has_dev:
        report(0.3, "dev_influence")
        dev_inf = inf.dev_influence(*influence_targets(X_dev, y_dev, X_train, y_train, gold_rows))
    if estimator in BASELINES:
        report(0.32, estimator)
        suspicion = _baseline_suspicion(
            estimator, X_train, y_train, n_classes, probs, seed=seed, device=device
        )
    else:
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
        head=inf.model,
        estimator=estimator,
        diagnostics=dict(inf.diagnostics),
        influence=inf,
    )
