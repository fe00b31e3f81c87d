"""Texts in, scored training set out: the part shared by the worker task and ``assay score``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from app.core.config import Settings
from workers.engine import (
    ScoreResult,
    cached_embeddings,
    score_training_set,
)
from workers.engine.agreement import comparison_rankings, ranking_agreement
from workers.engine.baselines import CleanlabResult
from workers.engine.calibration import fit_served_head
from workers.engine.choice import CLEANLAB, NOISE_CHECK, RankingChoice, serve_by_noise_check
from workers.engine.estimators import TEXT_ESTIMATORS, ExactHeadInfluence
from workers.engine.finetuned_cleanlab import FoldFineTuning, finetuned_cleanlab, finetunes
from workers.engine.gold_finetuned import gold_finetuned_disbelief
from workers.engine.inffeed import AdjustmentSelection, Suggestions, macro_f1, prune_by_ranker
from workers.engine.scoring import influence_targets
from workers.engine.suggestions import InfFeedReport, inffeed_suggestions

Progress = Callable[[float, str], None]
EMBED_SHARE = 0.6  # of the progress bar; scoring takes most of the rest


@dataclass
class PipelineOutput:
    result: ScoreResult
    dev_metrics: dict[str, Any]
    # the project's ranking beside the baselines (suspicion per training item, by name)
    comparisons: dict[str, np.ndarray]
    inffeed: InfFeedReport | None  # suggestions, when a gold dev set was given
    test_probs: np.ndarray | None  # the model's probabilities for the test items
    choice: RankingChoice | None  # what the noise_check policy served, and why


def _scaled(progress: Progress | None, start: float, share: float, stage: str | None = None):
    def report(fraction: float, inner_stage: str = "") -> None:
        if progress is not None:
            progress(start + share * fraction, stage or inner_stage)

    return report


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
    test_texts: Sequence[str] = (),
    test_y: Sequence[int] = (),
    prunable: Sequence[bool] | None = None,
    progress: Progress | None = None,
) -> PipelineOutput:
    """Embed (cached by text), train, rank, gather evidence; with a gold dev set also choose
    and apply InfFeed's label adjustment (to the training items and the test set), and try
    leaving the most harmful ``prunable`` training items out (see ``leave_out_harmful``)."""
    texts = [*train_texts, *dev_texts, *test_texts]
    embeddings = cached_embeddings(
        texts,
        settings.encoder_path(),
        embedding_cache_dir(settings),
        **embedding_options(settings),
        progress=_scaled(progress, 0.0, EMBED_SHARE, "embedding"),
    )
    n_train, n_dev = len(train_texts), len(dev_texts)
    x_train = embeddings[:n_train]
    x_dev = embeddings[n_train : n_train + n_dev]
    x_test = embeddings[n_train + n_dev :]
    y_train = np.asarray(train_y, dtype=np.int64)
    y_dev = np.asarray(dev_y, dtype=np.int64) if n_dev else None
    estimator = estimator or settings.default_estimator
    # the fine-tuned mode reads texts; the frozen-encoder estimators read their embeddings
    if estimator in TEXT_ESTIMATORS:
        inputs = [np.asarray(list(t), dtype=object) for t in (train_texts, dev_texts, test_texts)]
        options = {"encoder_path": settings.encoder_path(), "max_length": settings.embed_max_length}
    else:
        inputs, options = [x_train, x_dev, x_test], None
    result = score_training_set(
        inputs[0],
        y_train,
        n_classes,
        X_dev=inputs[1] if n_dev else None,
        y_dev=y_dev,
        gold_rows=gold_training_rows(prunable, settings),
        calibrate=calibrates(y_dev, n_classes, settings),
        l2=settings.head_l2,
        k=settings.evidence_k,
        estimator=scored_by(estimator),
        ids=None if train_ids is None else np.asarray(train_ids, dtype=np.int64),
        options=options,
        device=settings.device,
        progress=_scaled(progress, EMBED_SHARE, 0.9 - EMBED_SHARE),
    )
    dev = (x_dev, y_dev) if n_dev else (None, None)
    result, choice = ranked_by_policy(
        result,
        estimator,
        (x_train, y_train),
        dev,
        n_classes,
        settings,
        texts=(train_texts, dev_texts),
        gold_rows=gold_training_rows(prunable, settings),
        progress=None if progress is None else finetuning_progress(progress, 0.9),
    )
    return finish(
        result,
        inputs,
        x_train,
        y_train,
        n_classes,
        settings,
        y_dev=y_dev,
        test_y=test_y,
        prunable=prunable,
        progress=progress,
        choice=choice,
    )


def scored_by(estimator: str) -> str:
    """The estimator whose run a project's ranking starts from: the exact head's for the
    ``noise_check`` policy, else the ranking itself."""
    return ExactHeadInfluence.name if estimator == NOISE_CHECK else estimator


def ranked_by_policy(
    result: ScoreResult,
    estimator: str,
    train: tuple[np.ndarray, np.ndarray],
    dev: tuple[np.ndarray | None, np.ndarray | None],
    n_classes: int,
    settings: Settings,
    *,
    texts: tuple[Sequence[str], Sequence[str]],
    gold_rows: np.ndarray | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[ScoreResult, RankingChoice | None]:
    """For the ``noise_check`` policy, the run re-ranked by what the check serves (whole and
    sharded runs alike) from the training and gold dev (embeddings, labels), with cleanlab on
    the encoder fine-tuned in folds in cleanlab's place where fine-tuning is on (``texts``:
    the training and the gold dev texts, which join every fold's training), and served
    influence weighted by a head trained on the dev set and the ``gold_rows``
    where ``gain_weighting`` is on and, where fine-tuning is on, rank-averaged with the
    disbelief of an encoder fine-tuned on those gold rows alone (where every class has
    ``gain_weighting_min_gold_per_class`` of them); any other ranking is its run's own."""
    if estimator != NOISE_CHECK:
        return result, None
    y_train = train[1]
    train_texts, dev_texts = texts
    gold_dev = (dev_texts, dev[1]) if dev[1] is not None and len(dev_texts) else None

    def finetuned() -> CleanlabResult:
        return finetuned_cleanlab(
            train_texts,
            y_train,
            n_classes,
            config=fold_finetuning(settings),
            l2=settings.head_l2,
            gold=gold_dev,
            encoder_path=settings.encoder_path(),
            device=settings.device,
            progress=progress,
        )

    on = finetunes(settings.finetune, settings.device)
    gold_finetuned = None
    if on and gold_dev is not None:
        gold_finetuned = gold_finetuned_ranking(
            train_texts, y_train, gold_dev, gold_rows, n_classes, settings, progress
        )
    gold = None
    if settings.gain_weighting and dev[0] is not None and dev[1] is not None:
        gold = influence_targets(dev[0], dev[1], *train, gold_rows)
    ranked, choice = serve_by_noise_check(
        result,
        *train,
        n_classes,
        *dev,
        share=settings.noise_check_share,
        margin=settings.noise_check_margin,
        device=settings.device,
        finetuned=finetuned if on else None,
        gold=gold,
        gold_min_per_class=settings.gain_weighting_min_gold_per_class,
        gold_finetuned=gold_finetuned,
        gold_finetuned_weight=settings.gold_finetuned_weight,
    )
    if choice.served == CLEANLAB:  # fine-tuning is off: say what it would cost
        estimate = fold_finetuning(settings).cpu_estimate_s(
            len(y_train), settings.finetune_cpu_s_per_1000_item_epochs, len(dev_texts)
        )
        choice = replace(choice, finetune_estimate_s=estimate)
    return ranked, choice


def gold_finetuned_ranking(
    train_texts: Sequence[str],
    y_train: np.ndarray,
    gold_dev: tuple[Sequence[str], np.ndarray],
    gold_rows: np.ndarray | None,
    n_classes: int,
    settings: Settings,
    progress: Callable[[float], None] | None,
) -> Callable[[], np.ndarray] | None:
    """The disbelief in each training label of an encoder fine-tuned on the gold rows alone
    (the gold dev texts and the ``gold_rows`` of the training set), as a call the policy makes
    only where it serves influence; None where a class has fewer than
    ``gain_weighting_min_gold_per_class`` gold rows."""
    texts = np.asarray(train_texts, dtype=object)
    gold = influence_targets(
        np.asarray(gold_dev[0], dtype=object), gold_dev[1], texts, y_train, gold_rows
    )
    if np.bincount(gold[1], minlength=n_classes).min() < settings.gain_weighting_min_gold_per_class:
        return None
    return partial(
        gold_finetuned_disbelief,
        train_texts,
        y_train,
        gold,
        n_classes,
        config=fold_finetuning(settings),
        l2=settings.head_l2,
        encoder_path=settings.encoder_path(),
        device=settings.device,
        progress=progress,
    )


def finetuning_progress(progress: Progress, at: float) -> Callable[[float], None]:
    """The fold runs' progress, from ``at`` to halfway to the end of the bar and in the stage's
    name: they can take most of the job's time on a CPU."""
    return lambda fraction: progress(
        at + (1.0 - at) / 2 * fraction, f"fine-tuning the encoder ({fraction:.0%})"
    )


def fold_finetuning(settings: Settings) -> FoldFineTuning:
    """The fine-tuned ranking's configuration from the settings."""
    return FoldFineTuning(
        folds=settings.finetune_folds,
        epochs=settings.finetune_epochs,
        lr=settings.finetune_lr,
        max_length=settings.embed_max_length,
    )


def gold_training_rows(
    unreviewed_silver: Sequence[bool] | None, settings: Settings
) -> np.ndarray | None:
    """The training rows whose label is gold (everything but unreviewed silver), which join the
    dev set as influence targets unless ``gold_train_targets`` is off."""
    if unreviewed_silver is None or not len(unreviewed_silver) or not settings.gold_train_targets:
        return None
    return ~np.asarray(unreviewed_silver, dtype=bool)


def calibrates(y_dev: np.ndarray | None, n_classes: int, settings: Settings) -> bool:
    """Whether the served head's biases are re-fitted on dev: when that is on and every class
    has ``calibrate_min_dev_per_class`` dev items."""
    if not settings.calibrate_on_dev or y_dev is None or not len(y_dev):
        return False
    counts = np.bincount(np.asarray(y_dev, dtype=np.int64), minlength=n_classes)
    return int(counts.min()) >= settings.calibrate_min_dev_per_class


def embedding_cache_dir(settings: Settings) -> Path:
    return settings.artifacts_dir / "embeddings"


def embedding_options(settings: Settings) -> dict[str, Any]:
    """How texts are embedded: the same for whole sets and for shards (so they agree)."""
    return {
        "device": settings.device,
        "batch_size": settings.embed_batch_size,
        "max_length": settings.embed_max_length,
    }


def finish(
    result: ScoreResult,
    inputs: Sequence[np.ndarray],
    x_train: np.ndarray,
    y_train: np.ndarray,
    n_classes: int,
    settings: Settings,
    *,
    y_dev: np.ndarray | None,
    test_y: Sequence[int] = (),
    prunable: Sequence[bool] | None = None,
    progress: Progress | None = None,
    adjustment: AdjustmentSelection | None = None,
    train_suggestions: Suggestions | None = None,
    choice: RankingChoice | None = None,
) -> PipelineOutput:
    """After scoring: the baseline rankings to compare with, metrics, InfFeed's suggestions
    and the test predictions. ``inputs`` are what the estimator read (train, dev, test);
    ``adjustment`` and ``train_suggestions`` come from scoring shards when there were some."""
    n_train, n_dev, n_test = (len(part) for part in inputs)
    _scaled(progress, 0.9, 0.05, "comparing")(0.0)
    comparisons = comparison_rankings(
        result.estimator,
        result.suspicion,
        result.self_influence,
        result.probs,
        x_train,
        y_train,
        n_classes,
        with_cleanlab=settings.compare_with_cleanlab,
        cleanlab=None if choice is None else choice.cleanlab.suspicion,
    )
    metrics: dict[str, Any] = {
        "agreement": [
            row for row in ranking_agreement(comparisons) if row["a"] == result.estimator
        ],
        "train_accuracy": float(np.mean(result.predicted == y_train)),
        "n_train": n_train,
        **{f"estimator_{name}": float(value) for name, value in result.diagnostics.items()},
        **({} if choice is None else choice.metrics()),
    }
    inffeed = None
    if n_dev:
        _scaled(progress, 0.95, 0.04, "suggesting")(0.0)
        inffeed = inffeed_suggestions(
            result.influence,
            inputs[0],
            y_train,
            inputs[1],
            y_dev,
            inputs[2] if n_test else None,
            np.asarray(test_y, dtype=np.int64) if len(test_y) else None,
            chosen=adjustment,
            train=train_suggestions,
        )
        metrics.update(
            n_dev=n_dev,
            dev_macro_f1=inffeed.dev_f1_before,
            dev_macro_f1_inffeed=inffeed.dev_f1_after,
            inffeed_k=inffeed.config.k,
            inffeed_weighting=inffeed.config.weighting,
            inffeed_threshold=inffeed.config.threshold,
        )
        if inffeed.test_f1_before is not None:
            metrics.update(
                test_macro_f1=inffeed.test_f1_before, test_macro_f1_inffeed=inffeed.test_f1_after
            )
    test_probs = result.head.predict_proba(inputs[2]) if n_test else None
    if test_probs is not None and len(test_y) and "test_macro_f1" not in metrics:
        # without a dev set there is no InfFeed report, but test F1 still compares versions
        metrics["test_macro_f1"] = macro_f1(np.asarray(test_y), test_probs.argmax(axis=1))
    if n_dev and settings.prune_silver and result.estimator not in TEXT_ESTIMATORS:
        metrics.update(
            leave_out_harmful(result, inputs, y_train, y_dev, test_y, prunable, settings)
        )
    return PipelineOutput(result, metrics, comparisons, inffeed, test_probs, choice)


def leave_out_harmful(
    result: ScoreResult,
    inputs: Sequence[np.ndarray],
    y_train: np.ndarray,
    y_dev: np.ndarray,
    test_y: Sequence[int],
    prunable: Sequence[bool] | None,
    settings: Settings,
) -> dict[str, Any]:
    """A second head trained without the most suspicious unreviewed silver items.

    Why: re-annotating a slice fixes only that slice, while the rest of a systematically wrong
    silver set keeps pulling the model its way; leaving the items the ranking finds most
    harmful out costs no annotation. The share (0 included) is chosen on dev macro-F1, so it is
    used only when it helps there; test F1 is reported beside the full model's, never used.
    """
    mask = np.asarray(prunable if prunable is not None else [], dtype=bool)
    if not mask.any():
        return {}
    n_classes = result.probs.shape[1]
    calibrated = bool(result.diagnostics.get("dev_calibrated"))  # served so, pruned alike
    pruned = prune_by_ranker(
        inputs[0],
        y_train,
        mask,
        inputs[1],
        y_dev,
        ranker=lambda *_: result.suspicion,
        l2=settings.head_l2,
        n_classes=n_classes,
        calibrate=calibrated,
        device=settings.device,
    )
    out: dict[str, Any] = {
        "silver_left_out": len(pruned.dropped),
        "silver_left_out_share": pruned.fraction,
        "dev_macro_f1_left_out": pruned.dev_f1[pruned.fraction],
    }
    if len(inputs[2]) and len(test_y):
        head = fit_served_head(
            inputs[0],
            y_train,
            n_classes,
            l2=settings.head_l2,
            sample_weight=pruned.weights,
            calibrate_on=(inputs[1], y_dev) if calibrated else None,
            device=settings.device,
        )
        predicted = head.predict_proba(inputs[2]).argmax(axis=1)
        out["test_macro_f1_left_out"] = macro_f1(np.asarray(test_y), predicted)
    return out
