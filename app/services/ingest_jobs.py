"""Large uploads import in the background: a job row the web process creates, and the run the
``assay.import_dataset`` task makes of it (progress while streaming, all rows or none)."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import session_scope
from app.models import DatasetKind, Job, JobState, Project
from app.services.datasets import import_dataset
from app.services.ingest import IngestError
from app.services.jobs import create_job, enqueue, progress_reporter, set_state

IMPORT_JOB = "import"
log = logging.getLogger(__name__)


def start_import_job(
    session: Session, project: Project, path: Path, filename: str, kind: DatasetKind
) -> Job:
    """Create, commit and enqueue the import of a spooled upload; the job owns the file now."""
    from workers.celery_app import IMPORT_DATASET

    job = create_job(
        session,
        project,
        IMPORT_JOB,
        {"path": str(path), "filename": filename, "kind": kind.value},
    )
    session.commit()
    enqueue(job.id, IMPORT_DATASET)
    session.refresh(job)
    return job


def run_import_job(job_id: int) -> None:
    """Import the job's file in one transaction; a bad row fails the job with its file, line
    and field, and stores nothing. The spooled file is removed once the job has finished."""
    settings = get_settings()
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None or job.state in (JobState.succeeded, JobState.failed, JobState.cancelled):
            return  # a redelivered message for a finished job changes nothing
        params, project_id = dict(job.params), job.project_id
        sqlite = session.get_bind().dialect.name == "sqlite"
    path = Path(params["path"])
    set_state(job_id, JobState.running, stage="importing", progress=0.0)
    # SQLite has one writer: a progress write beside the open import transaction would wait
    # for it, so there the job only reports its end.
    report = None if sqlite else progress_reporter(job_id, settings.job_progress_interval_s)
    try:
        with session_scope() as session:
            project = session.get(Project, project_id)
            datasets = import_dataset(
                session,
                project,
                path,
                params["filename"],
                DatasetKind(params["kind"]),
                max_rows=settings.max_upload_rows,
                progress=report,
            )
            rows = sum(d.row_count for d in datasets)
        set_state(job_id, JobState.succeeded, stage=f"imported {rows} rows", progress=1.0)
    except IngestError as err:
        set_state(job_id, JobState.failed, stage="failed", error=str(err))
    except Exception as err:
        log.exception("import job %s failed", job_id)
        set_state(job_id, JobState.failed, stage="failed", error=f"{type(err).__name__}: {err}")
    finally:
        path.unlink(missing_ok=True)
