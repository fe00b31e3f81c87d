"""The ranking training job: judgments in, a suspicion rank per judgment out, stored as one
model version (a judgment is the unit the queue serves).

Per judgment: its grade as the prediction (the model suggests no grade: none measured better
than the annotator's), the model's top-one probability in its query as the confidence, the
suspicion rank, and the scores the queue and exports show (``model_score``, ``model_rank``
within the query, ``dev_influence``, ``self_influence``, ``grade_gap``, ``pointwise_residual``,
``suspicion``); its evidence is the judgments of other queries that support or oppose it
most."""

from __future__ import annotations

import numpy as np

from app.core.config import Settings
from app.core.db import session_scope
from app.kinds.ranking.context import MODEL_RANK
from app.models import Job, Project
from app.services.job_lease import Lease, hold_for_commit, mark_failed, mark_succeeded
from app.services.jobs import progress_reporter
from app.services.model_versions import record_comparison
from app.services.ranking_data import RankingData, load_ranking_data
from app.services.results import ItemResults, PredictionRow, rank_queue, store_model_version
from app.services.training_data import NotEnoughData
from workers.kinds.ranking.pipeline import Judged, RankingOutput, score_judgments


def train_and_score(lease: Lease, settings: Settings) -> None:
    """Load the project's judgments, score them, store the version with the job's success."""
    with session_scope() as session:
        job = session.get(Job, lease.job_id)
        project_id = job.project_id
        try:
            data = load_ranking_data(session, session.get(Project, project_id))
        except NotEnoughData as err:
            mark_failed(lease, str(err))
            return
    report = progress_reporter(lease.job_id, settings.job_progress_interval_s, lease)
    report(0.0, "scoring")
    output = score_judgments(
        [Judged(q, f, int(g)) for q, f, g in data.train],
        settings,
        dev=[Judged(q, f, int(g)) for q, f, g in data.dev],
    )
    report(0.99, "storing")
    artifact = settings.artifacts_dir / f"project_{project_id}"
    artifact /= f"job_{lease.job_id}_attempt_{lease.attempt}.npz"
    artifact.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        artifact,
        theta=output.scores.theta,
        item_ids=np.asarray(data.train_ids),
        features=np.asarray(output.feature_names),
    )
    with session_scope() as session:
        hold_for_commit(session, lease)
        version = store_model_version(
            session,
            project_id=project_id,
            job_id=lease.job_id,
            artifact_path=str(artifact),
            estimator=str(output.metrics["estimator"]),
            metrics=output.metrics,
            label_event_watermark=data.label_event_watermark,
            results=judgment_results(data, output),
        )
        record_comparison(session, version)
        rank_queue(session, project_id, version.id)
        mark_succeeded(session, lease)


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
