"""Celery tasks: thin shells that read a job's inputs, call the engine, write results back."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.exc import InterfaceError, OperationalError

import workers.recovery  # noqa: F401 (the reaper on worker start and on a timer)
from app.core.config import Settings, get_settings
from app.core.db import refresh_planner_stats, session_scope
from app.kinds import TaskKind
from app.models import Job, JobKind, Project
from app.services.job_lease import (
    Lease,
    LeaseLost,
    claim,
    heartbeat,
    hold_for_commit,
    mark_failed,
    mark_succeeded,
    requeue_or_fail,
)
from app.services.jobs import progress_reporter
from app.services.model_versions import record_comparison
from app.services.projects import estimator_of
from app.services.results import ItemResults, PredictionRow, rank_queue, store_model_version
from app.services.training_data import NotEnoughData, TrainingData, load_training_data
from workers import shard_tasks, sharding, tagging_job
from workers.celery_app import TRAIN_AND_SCORE, celery_app
from workers.engine.artifacts import model_arrays
from workers.pipeline import PipelineOutput, score_texts

log = logging.getLogger(__name__)


@celery_app.task(name=TRAIN_AND_SCORE, acks_late=True)
def train_and_score(job_id: int) -> None:
    """Train the head on the project's current labels and score every training item.

    Safe to deliver twice and to kill at any point: only the run that claims the job works on
    it, a heartbeat shows it alive, and results and the succeeded state are committed together
    by the run still holding the job (``app/services/job_lease.py``).
    """
    settings = get_settings()
    lease = claim(job_id, "loading", settings)
    if lease is None:
        return  # finished, or held by a live run: a redelivered message changes nothing
    with heartbeat(lease, settings.job_heartbeat_interval_s):
        try:
            TRAINERS[_task_kind(job_id)](lease, settings)
        except LeaseLost as err:
            log.warning("job %s: %s; this run stops without writing", job_id, err)
        except (OperationalError, InterfaceError, KombuOperationalError) as err:
            log.exception("job %s lost the database or broker", job_id)
            reason = f"attempt {lease.attempt} lost the database or broker: {type(err).__name__}"
            requeue_or_fail(job_id, JobKind.train_score, lease.attempt, reason, reaping=False)
        except Exception as err:
            log.exception("job %s failed", job_id)
            mark_failed(lease, f"{type(err).__name__}: {err}")


def _task_kind(job_id: int) -> TaskKind:
    with session_scope() as session:
        return TaskKind(session.get(Project, session.get(Job, job_id).project_id).task_kind)


def _train_and_score_texts(lease: Lease, settings: Settings) -> None:
    job_id = lease.job_id
    with session_scope() as session:
        job = session.get(Job, job_id)
        project = session.get(Project, job.project_id)
        estimator = estimator_of(project)
        try:
            data = load_training_data(session, project)
        except NotEnoughData as err:
            mark_failed(lease, str(err))
            return
    report = progress_reporter(job_id, settings.job_progress_interval_s, lease)
    report(0.0, "embedding")
    if sharding.applies(settings, estimator, len(data.train_ids)):
        output = shard_tasks.start(lease, settings, job.project_id, data, report)
        if output is None:
            return  # the shard tasks go on; the merge stores the results
    else:
        output = score_texts(
            data.train_texts,
            data.train_y,
            len(data.labels),
            settings,
            estimator=estimator,
            train_ids=data.train_ids,
            dev_texts=data.dev_texts,
            dev_y=data.dev_y,
            test_texts=data.test_texts,
            test_y=data.test_y,
            prunable=data.train_unreviewed_silver,
            progress=report,
        )
    report(0.99, "storing")
    store_results(lease, settings, job.project_id, data, output)


# how each task kind trains and scores (the web side's half is ``app.kinds.registry``)
TRAINERS: dict[TaskKind, Callable[[Lease, Settings], None]] = {
    TaskKind.text_classification: _train_and_score_texts,
    TaskKind.sequence_tagging: tagging_job.train_and_score,
}


def store_results(
    lease: Lease, settings: Settings, project_id: int, data: TrainingData, output: PipelineOutput
) -> None:
    """Save the model's arrays, then commit the model version with the job's success."""
    job_id = lease.job_id
    result = output.result
    # one file per attempt: a superseded run never overwrites the file its successor stored
    name = f"job_{job_id}_attempt_{lease.attempt}.npz"
    artifact = settings.artifacts_dir / f"project_{project_id}" / name
    artifact.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        artifact,
        **model_arrays(result.head),
        item_ids=np.asarray(data.train_ids),
        probs=result.probs,
    )
    with session_scope() as session:
        hold_for_commit(session, lease)
        version = store_model_version(
            session,
            project_id=project_id,
            job_id=job_id,
            artifact_path=str(artifact),
            estimator=result.estimator,
            metrics=output.dev_metrics,
            label_event_watermark=data.label_event_watermark,
            results=_item_results(data, output),
        )
        record_comparison(session, version)
        rank_queue(session, project_id, version.id)  # last: it locks the rows it changes
        mark_succeeded(session, lease)
    try:
        with session_scope() as session:
            refresh_planner_stats(session)
    except Exception:  # only a planner hint; the results are committed
        log.warning("job %s: planner statistics not refreshed", job_id, exc_info=True)


def _item_results(data: TrainingData, output: PipelineOutput) -> ItemResults:
    """Engine arrays to rows: predictions (train and test), scores, evidence, suggestions."""
    result, labels, ids = output.result, data.labels, data.train_ids
    suggested = output.inffeed.train.label if output.inffeed else None
    predictions = [
        PredictionRow(
            item_id,
            labels[result.predicted[i]],
            float(result.probs[i].max()),
            labels[suggested[i]] if suggested is not None else None,
            int(result.rank[i]),
        )
        for i, item_id in enumerate(ids)
    ]
    if output.test_probs is not None:
        test_suggested = output.inffeed.test.label if output.inffeed else None
        predictions += [
            PredictionRow(
                item_id,
                labels[output.test_probs[i].argmax()],
                float(output.test_probs[i].max()),
                labels[test_suggested[i]] if test_suggested is not None else None,
                None,
            )
            for i, item_id in enumerate(data.test_ids)
        ]
    kinds = {
        "loss": result.loss,
        "self_influence": result.self_influence,
        "suspicion": result.suspicion,
    }
    if result.dev_influence is not None:
        kinds["dev_influence"] = result.dev_influence
    kinds.update(
        {
            f"suspicion_{name}": value
            for name, value in output.comparisons.items()
            if name not in (result.estimator, "loss", "self_influence")
        }
    )
    scores = [
        (item_id, kind, float(values[i]))
        for kind, values in kinds.items()
        for i, item_id in enumerate(ids)
    ]
    evidence = _evidence(
        ids, ids, "supporter", result.top.supporters_idx, result.top.supporters_val
    )
    evidence += _evidence(ids, ids, "opposer", result.top.opposers_idx, result.top.opposers_val)
    if output.inffeed is not None:
        evidence += _evidence(
            ids,
            ids,
            "proponent",
            output.inffeed.train.reason_idx,
            output.inffeed.train.reason_val,
        )
        if output.inffeed.test is not None:
            evidence += _evidence(
                data.test_ids,
                ids,
                "proponent",
                output.inffeed.test.reason_idx,
                output.inffeed.test.reason_val,
            )
    # the labels this version learned from: the evidence shows them beside today's labels
    snapshot = {item_id: labels[y] for item_id, y in zip(ids, data.train_y, strict=True)}
    return ItemResults(predictions, scores, evidence, train_labels=snapshot)


def _evidence(
    target_ids: list[int], train_ids: list[int], role: str, idx: np.ndarray, val: np.ndarray
) -> list[tuple[int, int, str, int, float]]:
    return [
        (target_ids[t], train_ids[int(idx[t, r])], role, r + 1, float(val[t, r]))
        for t in range(idx.shape[0])
        for r in range(idx.shape[1])
    ]
