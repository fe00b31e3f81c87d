"""The closed loop: every N corrections since the last model version, retrain and rescore.

The policy lives in the project's settings (``retrain_every``: N, or absent for by hand only).
It is checked after every commit that wrote an annotator's label event, whichever route made
the decision, so the queue's routes need not know about it. The database keeps it to one job:
a partial unique index allows one queued or running training job per project.
"""

from __future__ import annotations

import logging

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.models import EventSource, Item, Job, JobKind, JobState, LabelEvent, Project
from app.services.decision_counts import is_correction
from app.services.jobs import JobConflict, create_job, enqueue, set_state
from app.services.results import latest_model_version

log = logging.getLogger(__name__)
_PENDING_KEY = "assay_corrected_projects"


class BadPolicy(ValueError):
    pass


def retrain_every_of(project: Project) -> int | None:
    """N corrections between automatic retrainings, or None: retrain by hand only."""
    value = project.settings.get("retrain_every")
    return int(value) if value else None


def set_retrain_every(project: Project, every: int | None) -> None:
    if every is not None and every < 1:
        raise BadPolicy("retrain every N corrections needs N of at least 1 (or none: by hand)")
    settings = {k: v for k, v in project.settings.items() if k != "retrain_every"}
    if every is not None:
        settings["retrain_every"] = every
    project.settings = settings


def corrections_between(session: Session, project_id: int, after: int, upto: int | None) -> int:
    """Corrections with label event ids in (after, upto]: what a model version did not see.
    An undone decision is none (see decision_counts), however long after it came the undo."""
    query = (
        select(func.count())
        .select_from(LabelEvent)
        .join(Item, Item.id == LabelEvent.item_id)
        .where(Item.project_id == project_id, LabelEvent.id > after, is_correction())
    )
    if upto is not None:
        query = query.where(LabelEvent.id <= upto)
    return session.scalar(query) or 0


def corrections_since_latest(session: Session, project_id: int) -> int:
    version = latest_model_version(session, project_id)
    watermark = version.label_event_watermark if version is not None else 0
    return corrections_between(session, project_id, watermark, None)


def maybe_retrain(session: Session, project: Project) -> Job | None:
    """Start a training job when the policy says so; None when it does not or one is active.

    Commits the job row before sending the task (the worker must see it). A second caller
    racing past the count gets the unique index's refusal, not a second job.
    """
    every = retrain_every_of(project)
    if every is None or corrections_since_latest(session, project.id) < every:
        return None
    try:
        job = create_job(session, project, JobKind.train_score, {"trigger": f"{every} corrections"})
        session.commit()
    except JobConflict:
        session.rollback()
        return None
    try:
        enqueue(job.id, _task_name())
    except Exception as err:  # the broker is down: do not leave a queued job blocking the next
        log.exception("could not enqueue retraining job %s", job.id)
        set_state(job.id, JobState.failed, stage="failed", error=f"enqueue: {err}")
        return None
    return job


def _task_name() -> str:
    from workers.celery_app import TRAIN_AND_SCORE

    return TRAIN_AND_SCORE


def _note_corrections(session: Session, _flush_context, _instances) -> None:
    """Remember which projects with a retraining policy this transaction wrote annotator label
    events for; a project without one (the default) costs the commit nothing."""
    events = [e for e in session.new if isinstance(e, LabelEvent)]
    item_ids = {e.item_id for e in events if e.source != EventSource.imported}
    if not item_ids:
        return
    with session.no_autoflush:  # decided items and their project are loaded: usually no SQL
        project_ids = {item.project_id for i in item_ids if (item := session.get(Item, i))}
        policed = {
            p
            for p in project_ids
            if (project := session.get(Project, p)) and retrain_every_of(project)
        }
    if policed:
        session.info.setdefault(_PENDING_KEY, set()).update(policed)


def _check_after_commit(session: Session) -> None:
    project_ids = session.info.pop(_PENDING_KEY, set())
    if not project_ids:
        return
    with Session(bind=session.get_bind(), expire_on_commit=False) as check:
        for project_id in sorted(project_ids):
            project = check.get(Project, project_id)
            if project is not None:
                maybe_retrain(check, project)


def _forget(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:  # a savepoint's rollback keeps the outer decisions
        session.info.pop(_PENDING_KEY, None)


_installed = False


def install_retrain_hook() -> None:
    """Check the policy after each commit that holds a correction (the web process calls this)."""
    global _installed
    if _installed:
        return
    event.listen(Session, "before_flush", _note_corrections)
    event.listen(Session, "after_commit", _check_after_commit)
    event.listen(Session, "after_soft_rollback", _forget)
    _installed = True
