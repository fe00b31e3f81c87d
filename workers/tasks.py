"""Celery tasks: thin shells that read a job's inputs, call the engine, write results back."""

from __future__ import annotations

import logging

import numpy as np

from app.config import get_settings
from app.db import session_scope
from app.models import Job, JobState, Project
from app.services.jobs import progress_reporter, set_state
from app.services.projects import estimator_of
from app.services.results import ItemResults, store_model_version
from app.services.training_data import NotEnoughData, load_training_data
from workers.celery_app import TRAIN_AND_SCORE, celery_app
from workers.pipeline import PipelineOutput, score_texts

log = logging.getLogger(__name__)


@celery_app.task(name=TRAIN_AND_SCORE, acks_late=True)
def train_and_score(job_id: int) -> None:
    """Train the head on the project's current labels and score every training item."""
    settings = get_settings()
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None or job.state in (JobState.succeeded, JobState.cancelled):
            return  # a redelivered message for a finished job changes nothing
        project = session.get(Project, job.project_id)
        estimator = estimator_of(project)
        try:
            data = load_training_data(session, project)
        except NotEnoughData as err:
            set_state(job_id, JobState.failed, stage="failed", error=str(err))
            return
    set_state(job_id, JobState.running, stage="embedding", progress=0.0)
    report = progress_reporter(job_id, settings.job_progress_interval_s)
    try:
        output = score_texts(
            data.train_texts,
            data.train_y,
            len(data.labels),
            settings,
            estimator=estimator,
            train_ids=data.train_ids,
            dev_texts=data.dev_texts,
            dev_y=data.dev_y,
            progress=report,
        )
        report(0.99, "storing")
        result = output.result
        artifact = settings.artifacts_dir / f"project_{job.project_id}" / f"job_{job_id}.npz"
        artifact.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            artifact,
            weight=result.head.weight,
            bias=result.head.bias,
            item_ids=np.asarray(data.train_ids),
            probs=result.probs,
        )
        with session_scope() as session:
            store_model_version(
                session,
                project_id=job.project_id,
                job_id=job_id,
                artifact_path=str(artifact),
                estimator=result.estimator,
                metrics=output.dev_metrics,
                label_event_watermark=data.label_event_watermark,
                results=_item_results(data.train_ids, data.labels, output),
            )
    except Exception as err:
        log.exception("job %s failed", job_id)
        set_state(job_id, JobState.failed, stage="failed", error=f"{type(err).__name__}: {err}")
        return
    set_state(job_id, JobState.succeeded, stage="done", progress=1.0)


def _item_results(item_ids: list[int], labels: list[str], output: PipelineOutput) -> ItemResults:
    result = output.result
    scores = {
        "loss": result.loss,
        "self_influence": result.self_influence,
        "suspicion": result.suspicion,
        **{
            f"suspicion_{name}": value
            for name, value in output.comparisons.items()
            if name not in (result.estimator, "loss", "self_influence")
        },
    }
    if result.dev_influence is not None:
        scores["dev_influence"] = result.dev_influence
    top = result.top
    evidence = []
    for role, idx, val in (
        ("supporter", top.supporters_idx, top.supporters_val),
        ("opposer", top.opposers_idx, top.opposers_val),
    ):
        for target in range(idx.shape[0]):
            for rank in range(idx.shape[1]):
                evidence.append(
                    (target, int(idx[target, rank]), role, rank + 1, float(val[target, rank]))
                )
    return ItemResults(
        item_ids=item_ids,
        predicted=[labels[i] for i in result.predicted],
        confidence=result.probs.max(axis=1).tolist(),
        rank=result.rank.tolist(),
        scores={k: np.asarray(v).tolist() for k, v in scores.items()},
        evidence=evidence,
    )
