"""Job lifecycle: created by the web process, advanced by the worker, read by everyone."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.db import session_scope
from app.models import ACTIVE_JOB_STATES, Job, JobKind, JobState, Project, utcnow
from app.services.job_lease import Lease, LeaseLost, beat


class JobConflict(RuntimeError):
    def __init__(self, job: Job):
        self.job = job
        super().__init__(f"job {job.id} ({job.kind}) is already {job.state} for this project")


def _active_job(session: Session, project: Project, kind: str) -> Job | None:
    return session.scalar(
        select(Job).where(
            Job.project_id == project.id, Job.kind == kind, Job.state.in_(ACTIVE_JOB_STATES)
        )
    )


def create_job(session: Session, project: Project, kind: str, params: dict | None = None) -> Job:
    """A queued job row; refuses a second active job of the same kind (a double submission).

    The check answers the common case; two racing callers are told apart by the partial
    unique index ``uq_jobs_one_active`` (one queued or running job per project and kind);
    the loser's session is rolled back, so call this before other changes or after a commit.
    """
    active = _active_job(session, project, kind)
    if active is not None:
        raise JobConflict(active)
    job = Job(project_id=project.id, kind=kind, params=params or {})
    session.add(job)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        active = _active_job(session, project, kind)
        if active is None:
            raise
        raise JobConflict(active) from None
    return job


def enqueue(job_id: int, task_name: str) -> str:
    """Send the task by name after the job row is committed, so the worker can see it."""
    from workers.celery_app import current_celery

    result = current_celery().send_task(task_name, args=[job_id])
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(celery_id=result.id))
    return result.id


def set_state(
    job_id: int,
    state: JobState,
    *,
    stage: str | None = None,
    error: str | None = None,
    progress: float | None = None,
) -> None:
    values: dict = {"state": state}
    if stage is not None:
        values["stage"] = stage
    if progress is not None:
        values["progress"] = progress
    if error is not None:
        values["error"] = error
    if state == JobState.running:
        values["started_at"] = utcnow()
    if state in (JobState.succeeded, JobState.failed, JobState.cancelled):
        values["finished_at"] = utcnow()
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(**values))


def progress_reporter(
    job_id: int, min_interval_s: float, lease: Lease | None = None
) -> Callable[[float, str], None]:
    """A callback for the engine that writes (stage, progress) at most every ``min_interval_s``.

    With a lease every write is also a heartbeat, and raises ``LeaseLost`` once another run
    took the job over, which stops a superseded run early.
    """
    last = {"time": 0.0, "stage": ""}

    def report(fraction: float, stage: str) -> None:
        now = time.monotonic()
        if stage == last["stage"] and now - last["time"] < min_interval_s and fraction < 1.0:
            return
        last.update(time=now, stage=stage)
        values = {"stage": stage, "progress": round(min(max(fraction, 0.0), 1.0), 4)}
        if lease is not None:
            if not beat(lease, **values):
                raise LeaseLost(f"job {job_id}: attempt {lease.attempt} was superseded")
            return
        with session_scope() as session:
            session.execute(update(Job).where(Job.id == job_id).values(**values))

    return report


class BrokerUnavailable(RuntimeError):
    """The job could not be sent to the workers; it is failed, not left queued with no message."""


def start_train_score(session: Session, project: Project) -> Job:
    """Create, commit and enqueue a training + scoring job."""
    from workers.celery_app import TRAIN_AND_SCORE

    job = create_job(session, project, JobKind.train_score)
    session.commit()
    try:
        enqueue(job.id, TRAIN_AND_SCORE)
    except Exception as err:  # the broker is down: say so, and free the project for a retry
        error = f"could not reach the broker: {type(err).__name__}: {err}"
        set_state(job.id, JobState.failed, stage="failed", error=error)
        raise BrokerUnavailable(f"job {job.id} failed: {error}") from err
    session.refresh(job)
    return job
