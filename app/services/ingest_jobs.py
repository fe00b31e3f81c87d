"""Large uploads import in the background: a job row the web process creates, and the run the
``assay.import_dataset`` task makes of it (progress while streaming, all rows or none)."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.db import session_scope
from app.kinds.errors import FormatError
from app.models import ACTIVE_JOB_STATES, DatasetKind, Job, JobKind, Project
from app.services.datasets import ImportMode, import_dataset
from app.services.job_lease import (
    LeaseLost,
    claim,
    heartbeat,
    hold_for_commit,
    mark_failed,
    mark_succeeded,
    requeue_or_fail,
)
from app.services.jobs import create_job, enqueue, progress_reporter

log = logging.getLogger(__name__)


def start_import_job(
    session: Session,
    project: Project,
    path: Path,
    filename: str,
    kind: DatasetKind,
    mode: ImportMode = ImportMode.refuse,
) -> Job:
    """Create, commit and enqueue the import of a spooled upload; the job owns the file now."""
    from workers.celery_app import IMPORT_DATASET

    job = create_job(
        session,
        project,
        JobKind.import_dataset,
        {"path": str(path), "filename": filename, "kind": kind.value, "mode": mode.value},
    )
    session.commit()
    enqueue(job.id, IMPORT_DATASET)
    session.refresh(job)
    return job


def run_import_job(job_id: int) -> None:
    """Import the job's file in one transaction, under the job's lease: a worker killed midway
    leaves nothing stored, and the reaper gives the job to the next worker, which imports the
    whole file once. A bad row fails the job with its file, line and field, and stores nothing.
    The spooled file is removed once the job has finished, not before: a retry needs it."""
    settings = get_settings()
    lease = claim(job_id, "importing", settings)
    if lease is None:  # finished, held by a live run, or out of attempts (claim failed it)
        remove_spooled_file_if_finished(job_id)
        return
    with session_scope() as session:
        job = session.get(Job, job_id)
        params, project_id = dict(job.params), job.project_id
        sqlite = session.get_bind().dialect.name == "sqlite"
    path = Path(params["path"])
    # SQLite has one writer: a progress write beside the open import transaction would wait
    # for it, so there the job only reports its end (the heartbeat retries until then).
    report = None if sqlite else progress_reporter(job_id, settings.job_progress_interval_s, lease)
    try:
        with heartbeat(lease, settings.job_heartbeat_interval_s), session_scope() as session:
            project = session.get(Project, project_id)
            datasets = import_dataset(
                session,
                project,
                path,
                params["filename"],
                DatasetKind(params["kind"]),
                max_rows=settings.max_upload_rows,
                progress=report,
                mode=ImportMode(params.get("mode", ImportMode.refuse.value)),
            )
            rows = sum(d.row_count for d in datasets)
            hold_for_commit(session, lease)  # rows and the succeeded state commit together
            mark_succeeded(session, lease, stage=f"imported {rows} rows")
    except LeaseLost as err:  # given up for dead meanwhile: the run that took over owns it
        log.warning("import job %s: %s", job_id, err)
        return
    except (OperationalError, InterfaceError) as err:  # the database went away: nothing stored
        log.exception("import job %s lost the database", job_id)
        reason = f"attempt {lease.attempt} lost the database: {type(err).__name__}"
        requeue_or_fail(job_id, JobKind.import_dataset, lease.attempt, reason, reaping=False)
        remove_spooled_file_if_finished(job_id)  # failed for good: no run will need it
        return
    except FormatError as err:
        finished = mark_failed(lease, str(err))
    except Exception as err:
        log.exception("import job %s failed", job_id)
        finished = mark_failed(lease, f"{type(err).__name__}: {err}")
    else:
        finished = True  # succeeded: the commit above held the lease
    if finished:  # else the run that took the job over owns the file
        path.unlink(missing_ok=True)


def remove_spooled_file_if_finished(job_id: int) -> None:
    """An import job's upload, once the job has finished (succeeded or failed for good)."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        finished = job is not None and job.state not in ACTIVE_JOB_STATES
        if finished and job.kind == JobKind.import_dataset:
            Path(job.params["path"]).unlink(missing_ok=True)
