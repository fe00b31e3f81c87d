"""Sharded scoring of one job: its plan, its files, and the steps that the shard tasks run.

A job whose training set has more than ``ASSAY_SHARD_SIZE`` rows (and whose estimator is
``exact_head``, the one whose time goes into per-row work, or the ``noise_check`` policy over
it) is scored in four steps:

1. embed: each shard embeds a slice of the texts (``embedding_shards``: the same batches as
   one call, so the same numbers); skipped when the embeddings cache has the whole set;
2. fit: the head is fitted once on all embeddings; its state is written to a file;
3. score: each shard computes its training rows' scores from that state;
4. merge: the rows are put together (and, for ``noise_check``, ranked as it serves) and
   finished and stored as an unsharded run would be.

The shards' inputs and outputs are arrays, so they are files in the job's directory under
the artifacts directory (every worker sees it, as it sees the embeddings cache), and tasks
pass only (job, attempt, shard number). The directory is per attempt: a run that was given up
for dead never writes into its successor's files.

Where Celery has a result backend (a Redis broker, or ``ASSAY_RESULT_BACKEND``), steps 1 and 3
are chords over the heavy workers, and the merge goes to the light queue
(``sharded_job``). The embedded filesystem broker has no result backend to count a
chord's finished shards, and its single worker would run them one at a time anyway, so there
the same steps run one after another inside the training task: same code, same files, same
results.
"""

from __future__ import annotations

import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.core.config import Settings
from app.services.job_lease import Lease
from app.services.training_data import TrainingData
from workers.engine.embeddings import atomic_write, cache_file, embed_texts
from workers.engine.shards import (
    SHARDED_ESTIMATORS,
    FittedState,
    RowScores,
    embedding_shards,
    fit_state,
    merge_rows,
    restore,
    row_shards,
    score_rows,
)
from workers.kinds.text_classification.pipeline import (
    PipelineOutput,
    Progress,
    calibrates,
    embedding_cache_dir,
    embedding_options,
    finetuning_progress,
    finish,
    gold_training_rows,
    ranked_by_policy,
)

# progress bar: where each step starts (the merge ends at 0.99, storing takes the rest)
EMBED_AT, FIT_AT, SCORE_AT, MERGE_AT = 0.0, 0.5, 0.55, 0.9


def applies(settings: Settings, estimator: str, n_train: int) -> bool:
    """Shard when it is switched on, the training set is larger than a shard, and the
    estimator is the one whose per-row work shards share one fit for."""
    return 0 < settings.shard_size < n_train and estimator in SHARDED_ESTIMATORS


@dataclass(frozen=True)
class ShardJob:
    """One attempt of a sharded job: where its files are."""

    lease: Lease
    root: Path

    @classmethod
    def of(cls, settings: Settings, lease: Lease) -> ShardJob:
        name = f"job_{lease.job_id}_attempt_{lease.attempt}"
        return cls(lease, settings.artifacts_dir / "shards" / name)

    def file(self, name: str) -> Path:
        return self.root / name

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Plan:
    """The job's inputs and shard sizes, fixed when it was planned: labels may change while
    it runs, and workers may be configured differently."""

    project_id: int
    data: TrainingData
    shard_size: int
    batch_size: int
    embed_shards: int  # 0 when the embeddings cache already holds the whole set
    score_shards: int
    gold_rows: np.ndarray | None  # training rows that are influence targets beside dev
    estimator: str  # exact_head or the noise_check policy over it


def _save(path: Path, value: Any) -> None:
    atomic_write(path, lambda fh: pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL))


def _load(path: Path) -> Any:
    with path.open("rb") as fh:
        return pickle.load(fh)  # our own workers wrote it, in our data directory


def _texts(data: TrainingData) -> list[str]:
    return [*data.train_texts, *data.dev_texts, *data.test_texts]


def _cache(settings: Settings, data: TrainingData) -> Path:
    """The embeddings cache file of the whole set: step 2 writes it, steps 3 and 4 read it."""
    texts = _texts(data)
    return cache_file(
        texts, settings.encoder_path(), embedding_cache_dir(settings), settings.embed_max_length
    )


def _embedding_slices(data: TrainingData, shard_size: int, batch_size: int) -> list[np.ndarray]:
    return embedding_shards(_texts(data), batch_size, shard_size)


def _rows(step: Plan) -> list[slice]:
    return row_shards(len(step.data.train_ids), step.shard_size)


def plan(
    settings: Settings, lease: Lease, project_id: int, data: TrainingData, estimator: str
) -> ShardJob:
    """Write the job's inputs and how many shards each step has."""
    job = ShardJob.of(settings, lease)
    size, batch = settings.shard_size, settings.embed_batch_size
    embed = 0 if _cache(settings, data).exists() else len(_embedding_slices(data, size, batch))
    score = len(row_shards(len(data.train_ids), size))
    gold = gold_training_rows(data.train_unreviewed_silver, settings)
    _save(job.file("plan.pkl"), Plan(project_id, data, size, batch, embed, score, gold, estimator))
    return job


def load_plan(job: ShardJob) -> Plan:
    return _load(job.file("plan.pkl"))


def embed_shard(settings: Settings, job: ShardJob, shard: int) -> None:
    """Step 1: embed one slice of the texts, in the order that reproduces the whole call's."""
    step = load_plan(job)
    texts = _texts(step.data)
    rows = _embedding_slices(step.data, step.shard_size, step.batch_size)[shard]
    options = {**embedding_options(settings), "batch_size": step.batch_size}
    emb = embed_texts([texts[i] for i in rows], settings.encoder_path(), **options)
    _save(job.file(f"embed_{shard}.pkl"), emb)


def _embeddings(settings: Settings, data: TrainingData) -> tuple[np.ndarray, ...]:
    """(train, dev, test) embeddings from the cache file that step 2 wrote."""
    emb = np.load(_cache(settings, data))
    n_train, n_dev = len(data.train_ids), len(data.dev_ids)
    return emb[:n_train], emb[n_train : n_train + n_dev], emb[n_train + n_dev :]


def fit(settings: Settings, job: ShardJob) -> int:
    """Step 2: gather the embeddings (into the cache), fit once; returns the scoring shards."""
    step = load_plan(job)
    data = step.data
    cache = _cache(settings, data)
    if not cache.exists():
        slices = _embedding_slices(data, step.shard_size, step.batch_size)
        parts = [_load(job.file(f"embed_{i}.pkl")) for i in range(len(slices))]
        emb = np.empty((len(_texts(data)), parts[0].shape[1]), dtype=parts[0].dtype)
        for rows, part in zip(slices, parts, strict=True):
            emb[rows] = part
        atomic_write(cache, lambda fh: np.save(fh, emb))
    x_train, x_dev, _ = _embeddings(settings, data)
    state = fit_state(
        x_train,
        np.asarray(data.train_y),
        len(data.labels),
        l2=settings.head_l2,
        X_dev=x_dev if len(x_dev) else None,
        y_dev=np.asarray(data.dev_y) if len(x_dev) else None,
        calibrate=calibrates(np.asarray(data.dev_y), len(data.labels), settings),
        device=settings.device,
    )
    _save(job.file("state.pkl"), state)
    return step.score_shards


def score_shard(settings: Settings, job: ShardJob, shard: int) -> None:
    """Step 3: the scores of one shard's training rows, from the shared fitted state."""
    step = load_plan(job)
    data = step.data
    state: FittedState = _load(job.file("state.pkl"))
    x_train, x_dev, _ = _embeddings(settings, data)
    inf = restore(state, x_train, np.asarray(data.train_y), settings.device, x_dev, data.dev_y)
    rows = _rows(step)[shard]
    scores = score_rows(
        inf,
        x_train,
        np.asarray(data.train_y),
        rows,
        k=settings.evidence_k,
        X_dev=x_dev if len(x_dev) else None,
        y_dev=np.asarray(data.dev_y) if len(x_dev) else None,
        gold_rows=step.gold_rows,
        adjustment=state.adjustment,
    )
    _save(job.file(f"score_{shard}.pkl"), scores)


def merge(
    settings: Settings, job: ShardJob, progress: Progress | None = None
) -> tuple[Plan, PipelineOutput]:
    """Step 4: the shards' rows as one run's output, finished as ``score_texts`` finishes;
    ``progress`` hears of the fine-tuned ranking's runs, where fine-tuning is on."""
    step = load_plan(job)
    data = step.data
    state: FittedState = _load(job.file("state.pkl"))
    x_train, x_dev, x_test = _embeddings(settings, data)
    y_train = np.asarray(data.train_y, dtype=np.int64)
    inf = restore(state, x_train, y_train, settings.device, x_dev, data.dev_y)
    parts: list[RowScores] = [_load(job.file(f"score_{i}.pkl")) for i in range(step.score_shards)]
    result, suggestions = merge_rows(parts, inf)
    y_dev = np.asarray(data.dev_y, dtype=np.int64) if len(x_dev) else None
    dev = (x_dev, y_dev) if len(x_dev) else (None, None)
    result, choice = ranked_by_policy(
        result,
        step.estimator,
        (x_train, y_train),
        dev,
        len(data.labels),
        settings,
        texts=(data.train_texts, data.dev_texts),
        gold_rows=step.gold_rows,
        progress=None if progress is None else finetuning_progress(progress, MERGE_AT),
    )
    output = finish(
        result,
        [x_train, x_dev, x_test],
        x_train,
        y_train,
        len(data.labels),
        settings,
        y_dev=y_dev,
        test_y=data.test_y,
        prunable=data.train_unreviewed_silver,
        adjustment=state.adjustment,
        train_suggestions=suggestions,
        choice=choice,
    )
    return step, output


def done_fraction(job: ShardJob, prefix: str, total: int) -> float:
    """How many of a step's shards have written their file (for the progress bar)."""
    return sum(job.file(f"{prefix}_{i}.pkl").exists() for i in range(total)) / max(total, 1)


def run_in_process(
    settings: Settings, job: ShardJob, progress: Progress | None = None
) -> tuple[Plan, PipelineOutput]:
    """All four steps one after another in this process (no result backend for chords)."""

    def report(fraction: float, stage: str) -> None:
        if progress is not None:
            progress(fraction, stage)

    step = load_plan(job)
    for i in range(step.embed_shards):
        report(EMBED_AT + (FIT_AT - EMBED_AT) * i / step.embed_shards, "embedding")
        embed_shard(settings, job, i)
    report(FIT_AT, "fitting")
    fit(settings, job)
    for i in range(step.score_shards):
        report(SCORE_AT + (MERGE_AT - SCORE_AT) * i / step.score_shards, "scoring")
        score_shard(settings, job, i)
    report(MERGE_AT, "merging")
    return merge(settings, job, report)
