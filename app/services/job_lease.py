"""A running job's lease: claimed by one worker run, kept alive by a heartbeat, fenced by attempt.

Why: a worker can die at any instruction (SIGKILL, out of memory, a lost machine) and a broker
can deliver one job's message twice (``acks_late`` redelivery, the Redis visibility timeout, a
re-queue by the reaper). The job row is the one source of truth: a run works on a job only after
claiming it with a conditional ``UPDATE`` (queued, or running with a stale heartbeat), and only
the run holding the job's current ``attempts`` number may store results or finish it. A
duplicate message therefore finds the job taken (or finished) and changes nothing, and a run
that was given up for dead cannot overwrite the run that replaced it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, update
from sqlalchemy.orm import Session

from app.core.config import Settings, get_settings
from app.core.db import session_scope
from app.models import Job, JobKind, JobState, utcnow

log = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """Another run took the job over (this run's heartbeat went stale); stop without writing."""


@dataclass(frozen=True)
class Lease:
    job_id: int
    attempt: int  # the job's ``attempts`` when this run claimed it


def leased_tasks() -> dict[str, str]:
    """Job kind -> the task that runs it under a lease; only these kinds are ever reaped."""
    from workers.celery_app import IMPORT_DATASET, TRAIN_AND_SCORE

    return {JobKind.train_score: TRAIN_AND_SCORE, JobKind.import_dataset: IMPORT_DATASET}


def stale_before(settings: Settings) -> datetime:
    return utcnow() - timedelta(seconds=settings.job_stale_after_s)


def last_sign_of_life() -> ColumnElement:
    """Heartbeat, else start, else creation: a running job always has one of them."""
    return func.coalesce(Job.heartbeat_at, Job.started_at, Job.created_at)


def _claimable(settings: Settings) -> ColumnElement[bool]:
    return or_(
        Job.state == JobState.queued,
        and_(Job.state == JobState.running, last_sign_of_life() < stale_before(settings)),
    )


def claim(job_id: int, stage: str, settings: Settings | None = None) -> Lease | None:
    """Start a run of the job, or None when another run holds it or it is finished.

    A job that has used up ``ASSAY_JOB_MAX_ATTEMPTS`` runs is failed here instead, with an
    error that says so.
    """
    settings = settings or get_settings()
    now = utcnow()
    with session_scope() as session:
        attempt = session.scalar(
            update(Job)
            .where(Job.id == job_id, _claimable(settings), Job.attempts < settings.job_max_attempts)
            .values(
                state=JobState.running,
                stage=stage,
                progress=0.0,
                error=None,
                attempts=Job.attempts + 1,
                heartbeat_at=now,
                started_at=now,
                finished_at=None,
            )
            .returning(Job.attempts)
        )
        if attempt is not None:
            return Lease(job_id, attempt)
        session.execute(
            update(Job)
            .where(Job.id == job_id, _claimable(settings))
            .values(
                state=JobState.failed,
                stage="failed",
                error=_gave_up(settings),
                finished_at=now,
                heartbeat_at=None,
            )
        )
    return None


def _gave_up(settings: Settings) -> str:
    return (
        f"the worker running this job was lost {settings.job_max_attempts} time(s) (no "
        f"heartbeat for {settings.job_stale_after_s:g} s each time); gave up after "
        f"ASSAY_JOB_MAX_ATTEMPTS={settings.job_max_attempts} attempts"
    )


def _held(lease: Lease) -> ColumnElement[bool]:
    return and_(
        Job.id == lease.job_id, Job.attempts == lease.attempt, Job.state == JobState.running
    )


def beat(lease: Lease, **values) -> bool:
    """Write the heartbeat (and any other job columns); False once the lease is lost."""
    with session_scope() as session:
        result = session.execute(
            update(Job).where(_held(lease)).values(heartbeat_at=utcnow(), **values)
        )
        return result.rowcount == 1


@contextmanager
def heartbeat(lease: Lease, interval_s: float) -> Iterator[threading.Event]:
    """Beat every ``interval_s`` from a thread while the body runs; yields a "lost" event.

    A thread, not the progress callback alone: some stages report nothing for a long time,
    and the thread dies with the process, which is exactly the signal the reaper needs. A
    failed beat (the database briefly away) is logged and retried on the next tick.
    """
    stop, lost = threading.Event(), threading.Event()

    def run() -> None:
        while not stop.wait(interval_s):
            try:
                if not beat(lease):
                    lost.set()
                    return
            except Exception:
                log.warning("job %s: heartbeat not written", lease.job_id, exc_info=True)

    thread = threading.Thread(target=run, name=f"heartbeat-job-{lease.job_id}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join()


def hold_for_commit(session: Session, lease: Lease) -> None:
    """Inside the transaction that stores results: make sure this run still holds the job.

    An ``UPDATE`` rather than a read so that it takes the write lock at once (the row lock on
    PostgreSQL, the database lock on SQLite): a reaper or a second run cannot take the job
    between this check and the commit.
    """
    result = session.execute(update(Job).where(_held(lease)).values(heartbeat_at=utcnow()))
    if result.rowcount != 1:
        raise LeaseLost(f"job {lease.job_id}: attempt {lease.attempt} was superseded")


def mark_succeeded(session: Session, lease: Lease, stage: str = "done") -> None:
    """In the same transaction as the results, so a job is never succeeded without them."""
    now = utcnow()
    session.execute(
        update(Job)
        .where(_held(lease))
        .values(state=JobState.succeeded, stage=stage, progress=1.0, finished_at=now)
    )


def mark_failed(lease: Lease, error: str) -> bool:
    """Fail the job for good (a real error, not a lost worker) if this run still holds it;
    False when it no longer did (another run owns the job now)."""
    return _fail([_held(lease)], error)


def requeue_or_fail(job_id: int, kind: str, attempt: int, reason: str, *, reaping: bool) -> str:
    """Give a run's job back: re-queue it, or fail it once its attempts are used up.

    ``reaping`` (the run looks dead: its heartbeat is stale) sends the message first, then
    marks the job queued only if it is still stale and held by that run: a worker taking the
    message before the update finds a stale running job, which it may claim, and a send that
    fails leaves the job for the next pass. A live run giving its job back (it lost the
    database or the broker) marks it queued first, so that the message cannot find it still
    running and be dropped, then sends; a send that fails then fails the job. Returns the new
    state.
    """
    from app.services.jobs import enqueue

    settings = get_settings()
    held = [Job.id == job_id, Job.attempts == attempt, Job.state == JobState.running]
    if reaping:
        held.append(last_sign_of_life() < stale_before(settings))
    task = leased_tasks().get(kind)
    if task is None or attempt >= settings.job_max_attempts:
        _fail(held, f"{reason}; gave up after ASSAY_JOB_MAX_ATTEMPTS={settings.job_max_attempts}")
        log.warning("job %s failed: %s (attempt %s)", job_id, reason, attempt)
        return JobState.failed
    # a queued job's heartbeat is when its message was sent (the reaper sends it again later)
    requeued = {"state": JobState.queued, "stage": "requeued", "heartbeat_at": utcnow()}
    if reaping:
        enqueue(job_id, task)
        with session_scope() as session:
            session.execute(update(Job).where(*held).values(**requeued))
    else:
        with session_scope() as session:
            if session.execute(update(Job).where(*held).values(**requeued)).rowcount != 1:
                return JobState.running  # superseded meanwhile: the other run owns it
        try:
            enqueue(job_id, task)
        except Exception as err:
            queued = [Job.id == job_id, Job.state == JobState.queued]
            _fail(queued, f"{reason}; could not re-queue it: {type(err).__name__}: {err}")
            return JobState.failed
    log.warning("job %s re-queued: %s (attempt %s)", job_id, reason, attempt)
    return JobState.queued


def _fail(where: list[ColumnElement[bool]], error: str) -> bool:
    with session_scope() as session:
        result = session.execute(
            update(Job)
            .where(*where)
            .values(state=JobState.failed, stage="failed", error=error, finished_at=utcnow())
        )
        return result.rowcount == 1
