"""The reaper: a running job whose heartbeat went stale lost its worker; re-queue or fail it.

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

from sqlalchemy import select

from app.config import get_settings
from app.db import session_scope
from app.models import Job, JobState
from app.services.job_lease import (
    last_sign_of_life,
    leased_tasks,
    requeue_or_fail,
    stale_before,
)

log = logging.getLogger(__name__)


def reap_stale_jobs() -> dict[int, str]:
    """One pass: every running job without a sign of life for ``ASSAY_JOB_STALE_AFTER_S``.

    Returns the new state of each job it acted on (queued or failed).
    """
    settings = get_settings()
    with session_scope() as session:
        stale = session.execute(
            select(Job.id, Job.kind, Job.attempts).where(
                Job.state == JobState.running,
                Job.kind.in_(list(leased_tasks())),
                last_sign_of_life() < stale_before(settings),
            )
        ).all()
    reason = f"its worker was lost (no heartbeat for {settings.job_stale_after_s:g} s)"
    return {
        job_id: requeue_or_fail(job_id, kind, attempts, reason, reaping=True)
        for job_id, kind, attempts in stale
    }


def start_reaper(interval_s: float | None = None) -> threading.Event:
    """Reap now and then every ``interval_s`` on a daemon thread; set the event to stop it."""
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

    threading.Thread(target=run, name="job-reaper", daemon=True).start()
    return stop
