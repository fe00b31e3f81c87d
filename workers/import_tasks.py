"""The background import task: light work (no torch), so it may run on any worker queue."""

from __future__ import annotations

from app.services.ingest_jobs import run_import_job
from workers.celery_app import IMPORT_DATASET, celery_app


@celery_app.task(name=IMPORT_DATASET, acks_late=True)
def import_dataset(job_id: int) -> None:
    """Stream the job's spooled upload into the project (see ``run_import_job``)."""
    run_import_job(job_id)
