"""Texts in, scored training set out: the part shared by the worker task and ``assay score``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.config import Settings
from workers.engine import ScoreResult, cached_embeddings, score_training_set
from workers.engine.agreement import comparison_rankings, ranking_agreement

Progress = Callable[[float, str], None]
EMBED_SHARE = 0.6  # of the progress bar; scoring takes most of the rest


@dataclass
class PipelineOutput:
    result: ScoreResult
    dev_metrics: dict[str, Any]
    # the project's ranking beside the baselines (suspicion per training item, by name)
    comparisons: dict[str, np.ndarray]


def _scaled(progress: Progress | None, start: float, share: float, stage: str | None = None):
    def report(fraction: float, inner_stage: str = "") -> None:
        if progress is not None:
            progress(start + share * fraction, stage or inner_stage)

    return report


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    scores = []
    for c in range(n_classes):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def score_texts(
    train_texts: Sequence[str],
    train_y: Sequence[int],
    n_classes: int,
    settings: Settings,
    *,
    estimator: str | None = None,
    train_ids: Sequence[int] | None = None,
    dev_texts: Sequence[str] = (),
    dev_y: Sequence[int] = (),
    progress: Progress | None = None,
) -> PipelineOutput:
    """Embed (cached by text), train the head, and compute influence and evidence."""
    encoder = settings.encoder_path()
    cache = settings.artifacts_dir / "embeddings"
    texts = list(train_texts) + list(dev_texts)
    embeddings = cached_embeddings(
        texts,
        encoder,
        cache,
        device=settings.device,
        batch_size=settings.embed_batch_size,
        max_length=settings.embed_max_length,
        progress=_scaled(progress, 0.0, EMBED_SHARE, "embedding"),
    )
    n_train = len(train_texts)
    x_train, x_dev = embeddings[:n_train], embeddings[n_train:]
    y_train = np.asarray(train_y, dtype=np.int64)
    y_dev = np.asarray(dev_y, dtype=np.int64) if len(dev_y) else None
    result = score_training_set(
        x_train,
        y_train,
        n_classes,
        X_dev=x_dev if y_dev is not None else None,
        y_dev=y_dev,
        l2=settings.head_l2,
        k=settings.evidence_k,
        estimator=estimator or settings.default_estimator,
        ids=None if train_ids is None else np.asarray(train_ids, dtype=np.int64),
        device=settings.device,
        progress=_scaled(progress, EMBED_SHARE, 0.97 - EMBED_SHARE),
    )
    report = _scaled(progress, 0.97, 0.02, "comparing")
    report(0.0)
    comparisons = comparison_rankings(
        result.estimator,
        result.suspicion,
        result.self_influence,
        result.probs,
        x_train,
        y_train,
        n_classes,
        with_cleanlab=settings.compare_with_cleanlab,
    )
    metrics: dict[str, Any] = {
        "agreement": [
            row for row in ranking_agreement(comparisons) if row["a"] == result.estimator
        ],
        "train_accuracy": float(np.mean(result.predicted == y_train)),
        "n_train": float(n_train),
        **{f"estimator_{name}": float(value) for name, value in result.diagnostics.items()},
    }
    if y_dev is not None:
        dev_pred = np.asarray(result.head.predict_proba(x_dev)).argmax(axis=1)
        metrics.update(
            dev_accuracy=float(np.mean(dev_pred == y_dev)),
            dev_macro_f1=macro_f1(y_dev, dev_pred, n_classes),
            n_dev=float(len(y_dev)),
        )
    return PipelineOutput(result, metrics, comparisons)
