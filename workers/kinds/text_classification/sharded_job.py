"""How a sharded text-classification job runs the steps of ``sharding``: as Celery chords
over the heavy workers (the tasks in ``workers.tasks`` call the steps below), or one after
another in this process where there is no result backend to count a chord's shards.

Embed and score shards are chords, so the next step starts when the last shard is done, on
whichever worker is free; the merge runs on the light queue and stores as the whole run does.
Tasks are sent by name (``workers.celery_app``), so nothing here imports the tasks.
"""

from __future__ import annotations

import logging
from functools import partial

from celery import chord
from sqlalchemy import update

from app.core.config import Settings
from app.core.db import session_scope
from app.models import Job
from app.services.job_lease import Lease
from app.services.training_data import TrainingData
from workers.celery_app import EMBED_SHARD, FIT_SHARDED, MERGE_SHARDS, SCORE_SHARD, current_celery
from workers.kinds.text_classification import sharding
from workers.kinds.text_classification.pipeline import PipelineOutput
from workers.kinds.text_classification.results import store_results
from workers.kinds.text_classification.sharding import ShardJob

log = logging.getLogger(__name__)


def advance(lease: Lease, fraction: float, stage: str) -> None:
    """Move the progress bar forward only: shards finish in any order."""
    with session_scope() as session:
        session.execute(
            update(Job)
            .where(Job.id == lease.job_id, Job.attempts == lease.attempt, Job.progress < fraction)
            .values(progress=round(fraction, 4), stage=stage)
        )


def start(
    lease: Lease,
    settings: Settings,
    project_id: int,
    data: TrainingData,
    estimator: str,
    progress: sharding.Progress,
) -> PipelineOutput | None:
    """Plan the job's shards; run them here without a result backend (embedded), else send
    the chords and return None (the merge task stores the results)."""
    job = sharding.plan(settings, lease, project_id, data, estimator)
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


def embed(settings: Settings, job: ShardJob, shard: int) -> None:
    """Step 1 for one shard, then the progress bar."""
    sharding.embed_shard(settings, job, shard)
    total = sharding.load_plan(job).embed_shards
    done = sharding.done_fraction(job, "embed", total)
    advance(job.lease, sharding.FIT_AT * done, "embedding")


def fit(settings: Settings, job: ShardJob) -> None:
    """Step 2, then the scoring shards as a chord whose callback is the merge."""
    advance(job.lease, sharding.FIT_AT, "fitting")
    shards = sharding.fit(settings, job)
    advance(job.lease, sharding.SCORE_AT, "scoring")
    celery = current_celery()
    job_id, attempt = job.lease.job_id, job.lease.attempt
    scores = [
        celery.signature(SCORE_SHARD, args=(job_id, attempt, i), immutable=True)
        for i in range(shards)
    ]
    merge_task = celery.signature(MERGE_SHARDS, args=(job_id, attempt), immutable=True)
    chord(scores, merge_task, app=celery).apply_async()


def score(settings: Settings, job: ShardJob, shard: int) -> None:
    """Step 3 for one shard, then the progress bar."""
    sharding.score_shard(settings, job, shard)
    total = sharding.load_plan(job).score_shards
    done = sharding.done_fraction(job, "score", total)
    fraction = sharding.SCORE_AT + (sharding.MERGE_AT - sharding.SCORE_AT) * done
    advance(job.lease, fraction, "scoring")


def merge(settings: Settings, job: ShardJob) -> None:
    """Step 4: the shards' rows stored as one run's results; the job's files removed."""
    advance(job.lease, sharding.MERGE_AT, "merging")
    step, output = sharding.merge(settings, job, partial(advance, job.lease))
    store_results(job.lease, settings, step.project_id, step.data, output)
    job.cleanup()
