"""The survival training job: the project's follow-up records in, one model version out, whose
rows are per record: its annotation as the prediction (a Cox model predicts a risk, not a
follow-up), how likely the model finds that outcome, its suspicion rank, its scores (risk and
its percentile, expected events by its time, martingale and deviance residuals, influence) and
its evidence, the records that most support and oppose it."""

from __future__ import annotations

import numpy as np

from app.core.config import Settings
from app.core.db import session_scope
from app.models import Job, Project
from app.services.job_lease import Lease, hold_for_commit, mark_failed, mark_succeeded
from app.services.jobs import progress_reporter
from app.services.model_versions import record_comparison
from app.services.results import ItemResults, PredictionRow, rank_queue, store_model_version
from app.services.survival_data import SurvivalData, load_survival_data
from app.services.training_data import NotEnoughData
from workers.kinds.survival.pipeline import SurvivalOutput, score_records


def train_and_score(lease: Lease, settings: Settings) -> None:
    """Load the project's records, score them, store the version with the job's success."""
    with session_scope() as session:
        job = session.get(Job, lease.job_id)
        project_id = job.project_id
        try:
            data = load_survival_data(session, session.get(Project, project_id))
        except NotEnoughData as err:
            mark_failed(lease, str(err))
            return
    report = progress_reporter(lease.job_id, settings.job_progress_interval_s, lease)
    report(0.0, "scoring")
    try:
        output = score_records(
            data.train_fields,
            data.train_labels,
            settings,
            dev_fields=data.dev_fields,
            dev_labels=data.dev_labels,
        )
    except ValueError as err:  # a covariate that cannot be encoded: the user's data to fix
        mark_failed(lease, str(err))
        return
    report(0.99, "storing")
    artifact = settings.artifacts_dir / f"project_{project_id}"
    artifact /= f"job_{lease.job_id}_attempt_{lease.attempt}.npz"
    artifact.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        artifact,
        theta=np.asarray(output.scores.theta),
        covariates=np.asarray(output.covariates),
        item_ids=np.asarray(data.train_ids),
    )
    with session_scope() as session:
        hold_for_commit(session, lease)
        version = store_model_version(
            session,
            project_id=project_id,
            job_id=lease.job_id,
            artifact_path=str(artifact),
            estimator=output.estimator,
            metrics=output.metrics,
            label_event_watermark=data.label_event_watermark,
            results=record_results(data, output),
        )
        record_comparison(session, version)
        rank_queue(session, project_id, version.id)
        mark_succeeded(session, lease)


def record_results(data: SurvivalData, output: SurvivalOutput) -> ItemResults:
    """Per training record its prediction row and scores; evidence between records."""
    s = output.scores
    ids = data.train_ids
    predictions = [
        PredictionRow(item_id, label, float(output.confidence[i]), None, int(s.rank[i]))
        for i, (item_id, label) in enumerate(zip(ids, data.train_labels, strict=True))
    ]
    columns = {
        "suspicion": s.suspicion,
        "self_influence": s.self_influence,
        "risk": s.risk,
        "risk_percentile": output.risk_percentile,
        "expected_events": s.expected_events,
        "martingale": s.martingale,
        "deviance": s.deviance,
    }
    if s.influence is not None:
        columns["dev_influence"] = s.influence
    scores = [
        (item_id, name, float(values[i]))
        for name, values in columns.items()
        for i, item_id in enumerate(ids)
    ]
    evidence = [
        (ids[target], ids[source], role, rank, float(value))
        for target, source, role, rank, value in s.evidence
    ]
    snapshot = dict(zip(ids, data.train_labels, strict=True))
    return ItemResults(predictions, scores, evidence, snapshot)
