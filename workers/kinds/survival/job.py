"""The survival training job: the project's follow-up records in, one model version out, whose
rows are per record: its annotation as the prediction (a Cox model predicts a risk, not a
follow-up), how likely the model finds that outcome, its suspicion rank, its scores (risk and
its percentile, expected events by its time, martingale and deviance residuals, influence) and
its evidence, the records that most support and oppose it."""

from __future__ import annotations

from app.core.config import Settings
from app.services.job_lease import Lease, mark_failed
from app.services.jobs import progress_reporter
from app.services.results import ItemResults, PredictionRow
from app.services.survival_data import SurvivalData, load_survival_data
from workers.kinds.survival.pipeline import SurvivalOutput, score_records
from workers.kinds.versions import load_for_job, save_artifact, store_version


def train_and_score(lease: Lease, settings: Settings) -> None:
    """Load the project's records, score them, store the version with the job's success."""
    loaded = load_for_job(lease, load_survival_data)
    if loaded is None:
        return
    project_id, data = loaded
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
    arrays = {
        "theta": output.scores.theta,
        "covariates": output.covariates,
        "item_ids": data.train_ids,
    }
    store_version(
        lease,
        project_id,
        save_artifact(settings, project_id, lease, arrays),
        estimator=output.estimator,
        metrics=output.metrics,
        label_event_watermark=data.label_event_watermark,
        results=record_results(data, output),
    )


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
