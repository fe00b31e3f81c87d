"""Celery tasks of a sharded job: thin shells around the steps in ``workers.sharding``.

Each gets (job id, attempt, shard): it works only while that attempt still holds the job (a
heartbeat keeps it alive meanwhile), and an error fails the job with the step's name. Embed and
score shards are chords, so the next step starts when the last shard is done, on whichever
worker is free; the merge runs on the light queue and stores like the unsharded task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from celery import chord
from sqlalchemy import update

from app.core.config import Settings, get_settings
from app.core.db import session_scope
from app.models import Job
from app.services.job_lease import Lease, LeaseLost, beat, heartbeat, mark_failed
from app.services.training_data import TrainingData
from workers import sharding
from workers.celery_app import (
    EMBED_SHARD,
    FIT_SHARDED,
    MERGE_SHARDS,
    SCORE_SHARD,
    celery_app,
    current_celery,
)
from workers.pipeline import PipelineOutput
from workers.sharding import ShardJob

log = logging.getLogger(__name__)
T = TypeVar("T")


def advance(lease: Lease, fraction: float, stage: str) -> None:
    """Move the progress bar forward only: shards finish in any order."""
    with session_scope() as session:
        session.execute(
            update(Job)
            .where(Job.id == lease.job_id, Job.attempts == lease.attempt, Job.progress < fraction)
            .values(progress=round(fraction, 4), stage=stage)
        )


def _step(
    job_id: int, attempt: int, name: str, body: Callable[[Settings, ShardJob], T]
) -> T | None:
    """Run one step while this attempt holds the job; None when it does not (or failed)."""
    settings = get_settings()
    lease = Lease(job_id, attempt)
    if not beat(lease):
        log.info("job %s attempt %s no longer holds the job; %s skipped", job_id, attempt, name)
        return None
    with heartbeat(lease, settings.job_heartbeat_interval_s):
        try:
            return body(settings, ShardJob.of(settings, lease))
        except LeaseLost as err:
            log.warning("job %s: %s; %s stops without writing", job_id, err, name)
        except Exception as err:
            log.exception("job %s failed in %s", job_id, name)
            mark_failed(lease, f"{name}: {type(err).__name__}: {err}")
    return None


def start(
    lease: Lease,
    settings: Settings,
    project_id: int,
    data: TrainingData,
    progress: sharding.Progress,
) -> PipelineOutput | None:
    """Plan the job's shards; run them here without a result backend (embedded), else send
    the chords and return None (the merge task stores the results)."""
    job = sharding.plan(settings, lease, project_id, data)
    step = sharding.load_plan(job)
    in_process = settings.celery_result_backend is None
    log.info(
        "job %s: %s embedding and %s scoring shards, %s",
        lease.job_id,
        step.embed_shards,
        step.score_shards,
        "in this process" if in_process else "as chords",
    )
    if in_process:
        _, output = sharding.run_in_process(settings, job, progress)
        job.cleanup()
        return output
    dispatch(job)
    return None


def dispatch(job: ShardJob) -> None:
    """Start the chords of a planned job: embed shards then fit (or fit at once on a cache hit)."""
    step = sharding.load_plan(job)
    celery = current_celery()
    lease = job.lease
    fit = celery.signature(FIT_SHARDED, args=(lease.job_id, lease.attempt), immutable=True)
    if not step.embed_shards:
        fit.apply_async()
        return
    embeds = [
        celery.signature(EMBED_SHARD, args=(lease.job_id, lease.attempt, i), immutable=True)
        for i in range(step.embed_shards)
    ]
    chord(embeds, fit, app=celery).apply_async()


@celery_app.task(name=EMBED_SHARD, ignore_result=False, acks_late=True)
def embed_shard(job_id: int, attempt: int, shard: int) -> None:
    def body(settings: Settings, job: ShardJob) -> None:
        sharding.embed_shard(settings, job, shard)
        total = sharding.load_plan(job).embed_shards
        done = sharding.done_fraction(job, "embed", total)
        advance(job.lease, sharding.FIT_AT * done, "embedding")

    _step(job_id, attempt, f"embedding shard {shard}", body)


@celery_app.task(name=FIT_SHARDED, ignore_result=False, acks_late=True)
def fit_sharded(job_id: int, attempt: int) -> None:
    def body(settings: Settings, job: ShardJob) -> None:
        advance(job.lease, sharding.FIT_AT, "fitting")
        shards = sharding.fit(settings, job)
        advance(job.lease, sharding.SCORE_AT, "scoring")
        celery = current_celery()
        scores = [
            celery.signature(SCORE_SHARD, args=(job_id, attempt, i), immutable=True)
            for i in range(shards)
        ]
        merge = celery.signature(MERGE_SHARDS, args=(job_id, attempt), immutable=True)
        chord(scores, merge, app=celery).apply_async()

    _step(job_id, attempt, "fitting", body)


@celery_app.task(name=SCORE_SHARD, ignore_result=False, acks_late=True)
def score_shard(job_id: int, attempt: int, shard: int) -> None:
    def body(settings: Settings, job: ShardJob) -> None:
        sharding.score_shard(settings, job, shard)
        total = sharding.load_plan(job).score_shards
        done = sharding.done_fraction(job, "score", total)
        fraction = sharding.SCORE_AT + (sharding.MERGE_AT - sharding.SCORE_AT) * done
        advance(job.lease, fraction, "scoring")

    _step(job_id, attempt, f"scoring shard {shard}", body)


@celery_app.task(name=MERGE_SHARDS, acks_late=True)
def merge_shards(job_id: int, attempt: int) -> None:
    from workers.tasks import store_results

    def body(settings: Settings, job: ShardJob) -> None:
        advance(job.lease, sharding.MERGE_AT, "merging")
        step, output = sharding.merge(settings, job)
        store_results(job.lease, settings, step.project_id, step.data, output)
        job.cleanup()

    _step(job_id, attempt, "merging", body)
