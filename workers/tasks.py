"""Every Celery task, and only the tasks: each is a thin shell that runs a job module under the
job's lease (``app/services/job_lease.py``): only the run holding the job works on it, a
heartbeat shows it alive, and its errors fail the job or send it back to the queue.

Task names come from ``workers.celery_app`` and never change (queued messages carry them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.exc import InterfaceError, OperationalError

import workers.recovery  # noqa: F401 (the reaper on worker start and on a timer)
from app.core.config import Settings, get_settings
from app.core.db import session_scope
from app.kinds import TaskKind
from app.models import Job, JobKind, Project
from app.services.ingest_jobs import run_import_job
from app.services.job_lease import (
    Lease,
    LeaseLost,
    beat,
    claim,
    heartbeat,
    mark_failed,
    requeue_or_fail,
)
from workers.celery_app import (
    EMBED_SHARD,
    FIT_SHARDED,
    IMPORT_DATASET,
    MERGE_SHARDS,
    SCORE_SHARD,
    TRAIN_AND_SCORE,
    celery_app,
)
from workers.kinds.registry import TRAINERS
from workers.kinds.text_classification import sharded_job
from workers.kinds.text_classification.sharding import ShardJob

log = logging.getLogger(__name__)
T = TypeVar("T")


@celery_app.task(name=TRAIN_AND_SCORE, acks_late=True)
def train_and_score(job_id: int) -> None:
    """Train on the project's current labels and score every training item, as its task kind
    does (``workers.kinds.registry``).

    Safe to deliver twice and to kill at any point: only the run that claims the job works on
    it, and results and the succeeded state are committed together by the run still holding it.
    """
    settings = get_settings()
    lease = claim(job_id, "loading", settings)
    if lease is None:
        return  # finished, or held by a live run: a redelivered message changes nothing
    with heartbeat(lease, settings.job_heartbeat_interval_s):
        try:
            TRAINERS[_task_kind(job_id)](lease, settings)
        except LeaseLost as err:
            log.warning("job %s: %s; this run stops without writing", job_id, err)
        except (OperationalError, InterfaceError, KombuOperationalError) as err:
            log.exception("job %s lost the database or broker", job_id)
            reason = f"attempt {lease.attempt} lost the database or broker: {type(err).__name__}"
            requeue_or_fail(job_id, JobKind.train_score, lease.attempt, reason, reaping=False)
        except Exception as err:
            log.exception("job %s failed", job_id)
            mark_failed(lease, f"{type(err).__name__}: {err}")


def _task_kind(job_id: int) -> TaskKind:
    with session_scope() as session:
        return TaskKind(session.get(Project, session.get(Job, job_id).project_id).task_kind)


def _shard_step(
    job_id: int, attempt: int, name: str, body: Callable[[Settings, ShardJob], T]
) -> T | None:
    """Run one step of a sharded job while this attempt holds the job; None when it does not
    (or failed: the job is marked failed with the step's name)."""
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


@celery_app.task(name=EMBED_SHARD, ignore_result=False, acks_late=True)
def embed_shard(job_id: int, attempt: int, shard: int) -> None:
    _shard_step(
        job_id,
        attempt,
        f"embedding shard {shard}",
        lambda settings, job: sharded_job.embed(settings, job, shard),
    )


@celery_app.task(name=FIT_SHARDED, ignore_result=False, acks_late=True)
def fit_sharded(job_id: int, attempt: int) -> None:
    _shard_step(job_id, attempt, "fitting", sharded_job.fit)


@celery_app.task(name=SCORE_SHARD, ignore_result=False, acks_late=True)
def score_shard(job_id: int, attempt: int, shard: int) -> None:
    _shard_step(
        job_id,
        attempt,
        f"scoring shard {shard}",
        lambda settings, job: sharded_job.score(settings, job, shard),
    )


@celery_app.task(name=MERGE_SHARDS, acks_late=True)
def merge_shards(job_id: int, attempt: int) -> None:
    _shard_step(job_id, attempt, "merging", sharded_job.merge)


@celery_app.task(name=IMPORT_DATASET, acks_late=True)
def import_dataset(job_id: int) -> None:
    """Stream the job's spooled upload into the project (see ``run_import_job``); light work,
    so it may run on any queue."""
    run_import_job(job_id)
