"""The ranking training job: judgments in, a suspicion rank per judgment out, stored as one
model version (a judgment is the unit the queue serves).

Per judgment: its grade as the prediction (the model suggests no grade: none measured better
than the annotator's), the model's top-one probability in its query as the confidence, the
suspicion rank, and the scores the queue and exports show (``model_score``, ``model_rank``
within the query, ``dev_influence``, ``self_influence``, ``grade_gap``, ``pointwise_residual``,
``suspicion``); its evidence is the judgments of other queries that support or oppose it
most."""

from __future__ import annotations

from app.core.config import Settings
from app.kinds.ranking.context import MODEL_RANK
from app.services.job_lease import Lease
from app.services.jobs import progress_reporter
from app.services.ranking_data import RankingData, load_ranking_data
from app.services.results import ItemResults, PredictionRow
from workers.kinds.ranking.pipeline import Judged, RankingOutput, score_judgments
from workers.kinds.versions import load_for_job, save_artifact, store_version


def train_and_score(lease: Lease, settings: Settings) -> None:
    """Load the project's judgments, score them, store the version with the job's success."""
    loaded = load_for_job(lease, load_ranking_data)
    if loaded is None:
        return
    project_id, data = loaded
    report = progress_reporter(lease.job_id, settings.job_progress_interval_s, lease)
    report(0.0, "scoring")
    output = score_judgments(
        [Judged(q, f, int(g)) for q, f, g in data.train],
        settings,
        dev=[Judged(q, f, int(g)) for q, f, g in data.dev],
    )
    report(0.99, "storing")
    arrays = {
        "theta": output.scores.theta,
        "item_ids": data.train_ids,
        "features": output.feature_names,
    }
    store_version(
        lease,
        project_id,
        save_artifact(settings, project_id, lease, arrays),
        estimator=str(output.metrics["estimator"]),
        metrics=output.metrics,
        label_event_watermark=data.label_event_watermark,
        results=judgment_results(data, output),
    )


def judgment_results(data: RankingData, output: RankingOutput) -> ItemResults:
    """The version's rows (module docstring); evidence rows name items, not positions."""
    s, ids = output.scores, data.train_ids
    predictions, item_scores = [], []
    for i, item_id in enumerate(ids):
        grade = data.train[i][2]
        predictions.append(
            PredictionRow(
                item_id, grade, float(output.top_share[i]), None, int(s.suspicion_rank[i])
            )
        )
        values = {
            "model_score": s.scores[i],
            MODEL_RANK: s.model_rank[i],
            "self_influence": s.self_influence[i],
            "grade_gap": s.gap[i],
            "pointwise_residual": s.pointwise[i],
            "suspicion": s.suspicion[i],
        }
        if s.influence is not None:
            values["dev_influence"] = s.influence[i]
        item_scores += [(item_id, name, float(v)) for name, v in values.items()]
    evidence = [(ids[t], ids[j], role, rank, value) for t, j, role, rank, value in s.evidence]
    snapshot = {item_id: judged[2] for item_id, judged in zip(ids, data.train, strict=True)}
    return ItemResults(predictions, item_scores, evidence, snapshot)
