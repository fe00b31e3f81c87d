"""What every kind's training job does around its own scoring: load the project's data (a
project with too little fails the job with the reason), write the parameters to a file of the
attempt's own, and store the version with the job's success in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import session_scope
from app.models import Job, Project
from app.services.job_lease import Lease, hold_for_commit, mark_failed, mark_succeeded
from app.services.model_versions import record_comparison
from app.services.results import ItemResults, rank_queue, store_model_version
from app.services.training_data import NotEnoughData

Data = TypeVar("Data")


def load_for_job(lease: Lease, load: Callable[[Session, Project], Data]) -> tuple[int, Data] | None:
    """(project id, ``load``'s data), or None once the job is marked failed because
    ``load`` found too little to train on (``NotEnoughData``)."""
    with session_scope() as session:
        project_id = session.get(Job, lease.job_id).project_id
        try:
            return project_id, load(session, session.get(Project, project_id))
        except NotEnoughData as err:
            mark_failed(lease, str(err))
            return None


def save_artifact(
    settings: Settings, project_id: int, lease: Lease, arrays: Mapping[str, Any]
) -> Path:
    """The arrays in one file per attempt, so a superseded run never overwrites it."""
    artifact = settings.artifacts_dir / f"project_{project_id}"
    artifact /= f"job_{lease.job_id}_attempt_{lease.attempt}.npz"
    artifact.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(artifact, **{name: np.asarray(a) for name, a in arrays.items()})
    return artifact


def store_version(
    lease: Lease,
    project_id: int,
    artifact: Path,
    *,
    estimator: str,
    metrics: dict[str, Any],
    label_event_watermark: int,
    results: ItemResults,
) -> None:
    """The version, its comparison with the one before and the queue's new order, committed
    with the job's success (only while the lease is still this run's)."""
    with session_scope() as session:
        hold_for_commit(session, lease)
        version = store_model_version(
            session,
            project_id=project_id,
            job_id=lease.job_id,
            artifact_path=str(artifact),
            estimator=estimator,
            metrics=metrics,
            label_event_watermark=label_event_watermark,
            results=results,
        )
        record_comparison(session, version)
        rank_queue(session, project_id, version.id)
        mark_succeeded(session, lease)
