"""A text-classification run's output stored: the model's arrays as a file, and the model
version with its per-item predictions, scores and evidence, committed with the job's success.
Both the whole run (``job``) and the sharded one's merge (``sharded_job``) end here."""

from __future__ import annotations

import logging

import numpy as np

from app.core.config import Settings
from app.core.db import refresh_planner_stats, session_scope
from app.services.job_lease import Lease, hold_for_commit, mark_succeeded
from app.services.model_versions import record_comparison
from app.services.results import ItemResults, PredictionRow, rank_queue, store_model_version
from app.services.training_data import TrainingData
from workers.engine.artifacts import model_arrays
from workers.kinds.text_classification.pipeline import PipelineOutput

log = logging.getLogger(__name__)


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
