"""The reaper: a running job whose heartbeat went stale lost its worker; re-queue or fail it.
A queued job that no worker took in that time is sent again.

Where it runs, and why there: both the web process and every worker run it on a timer thread
(``ASSAY_JOB_REAPER_INTERVAL_S``), and a worker also runs it once when it starts. Celery beat is
not running in embedded mode, so a beat schedule would be uncertain; the web process is running
whenever anybody can look at a job, so a job whose only worker was killed and never replaced is
still reported failed (or re-queued) within a stale period plus one interval; a starting worker
picks up the jobs its dead predecessor left at once. A pass is one small ``SELECT`` over the
running jobs, so running it in several processes costs nothing, and two reapers
acting on the same job are harmless: every change is conditional on the run still holding it
(``app/services/job_lease.py``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import select, update

from app.core.config import get_settings
from app.core.db import session_scope
from app.models import ACTIVE_JOB_STATES, Job, JobState, utcnow
from app.services.ingest_jobs import remove_spooled_file_if_finished
from app.services.job_lease import (
    last_sign_of_life,
    leased_tasks,
    requeue_or_fail,
    stale_before,
)
from app.services.jobs import enqueue

log = logging.getLogger(__name__)


def reap_stale_jobs() -> dict[int, str]:
    """One pass over the jobs without a sign of life for ``ASSAY_JOB_STALE_AFTER_S``.

    A running one lost its worker: re-queued, or failed once its attempts are used up. A
    queued one that no worker took is sent again: its message may have gone with a broker
    that restarted without persistence, and a duplicate changes nothing (the claim). Returns
    the new state of each job it acted on.
    """
    settings = get_settings()
    tasks = leased_tasks()
    with session_scope() as session:
        stale = session.execute(
            select(Job.id, Job.kind, Job.state, Job.attempts).where(
                Job.state.in_(ACTIVE_JOB_STATES),
                Job.kind.in_(list(tasks)),
                last_sign_of_life() < stale_before(settings),
            )
        ).all()
    reason = f"its worker was lost (no heartbeat for {settings.job_stale_after_s:g} s)"
    acted = {}
    for job_id, kind, state, attempts in stale:
        try:
            if state == JobState.running:
                acted[job_id] = requeue_or_fail(job_id, kind, attempts, reason, reaping=True)
                if acted[job_id] == JobState.failed:  # for good: an import's upload goes
                    remove_spooled_file_if_finished(job_id)
            else:
                _send_again(job_id, tasks[kind])
                acted[job_id] = JobState.queued
        except Exception:  # the broker or database away: this job waits for the next pass
            log.warning("job reaper: job %s left for the next pass", job_id, exc_info=True)
    return acted


def _send_again(job_id: int, task: str) -> None:
    """A queued job's heartbeat is when its message was last sent."""
    enqueue(job_id, task)
    with session_scope() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == JobState.queued)
            .values(heartbeat_at=utcnow())
        )
    log.warning("job %s: no worker took it; its message was sent again", job_id)


def start_reaper(interval_s: float | None = None) -> Callable[[], None]:
    """Reap now and then every ``interval_s`` on a daemon thread; returns its stop function,
    which waits for a pass under way (so none outlives the settings it started with)."""
    interval = interval_s or get_settings().job_reaper_interval_s
    stop = threading.Event()

    def run() -> None:
        while True:
            try:
                reap_stale_jobs()
            except Exception:  # the database or broker away: try again next time
                log.warning("job reaper pass failed", exc_info=True)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=run, name="job-reaper", daemon=True)
    thread.start()

    def stop_reaper() -> None:
        stop.set()
        thread.join()

    return stop_reaper
