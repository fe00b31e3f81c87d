"""A real worker process runs a real job: upload, start, progress, scores in the database.

Two setups, one code path: PostgreSQL + Redis (production) and SQLite + filesystem broker
(embedded).
"""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support import (
    REDIS_URL,
    assay_env,
    postgres_database,
    upload_demo_project,
    wait_until,
)

N_TRAIN, N_DEV, N_TEST = 120, 60, 30
JOB_TIMEOUT_S = 300


@pytest.fixture(params=["postgresql+redis", "sqlite+filesystem"])
def live_env(request, tmp_path):
    if request.param == "postgresql+redis":
        redis.Redis.from_url(REDIS_URL).flushdb()
        with (
            postgres_database() as url,
            assay_env(tmp_path, database_url=url, broker_url=REDIS_URL) as env,
        ):
            yield env
    else:
        with assay_env(tmp_path) as env:
            yield env


def test_worker_trains_scores_and_reports_progress(live_env, tmp_path):
    from app.cli.worker_process import start_worker, stop_worker
    from app.core.auth import create_user, issue_token
    from app.core.db import session_scope
    from app.main import create_app
    from app.models import Influencer, Item, ModelVersion, Prediction, Role, Score

    with TestClient(create_app()) as client:
        with session_scope() as session:
            token = issue_token(
                session, create_user(session, "ada", "pw-pw-pw-pw", Role.admin), "t"
            )
        headers = {"Authorization": f"Bearer {token}"}
        project_id = upload_demo_project(
            client, headers, "p", {"silver": N_TRAIN, "gold_dev": N_DEV, "test": N_TEST}
        )

        worker = start_worker(tmp_path / "worker.log")
        try:
            job = client.post(
                f"/api/v1/projects/{project_id}/jobs", headers=headers, json={}
            ).json()
            seen = []

            def finished():
                polled = client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json()
                seen.append(polled)
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
                return polled["state"] in ("succeeded", "failed")

            wait_until(finished, JOB_TIMEOUT_S, interval=0.1, what="the job")
        finally:
            stop_worker(worker)
        final = seen[-1]
        assert final["state"] == "succeeded", final
        assert final["progress"] == 1.0 and final["finished_at"]
        assert "running" in {p["state"] for p in seen}
        progress = [p["progress"] for p in seen]
        assert progress == sorted(progress), "progress never goes backwards"

        with session_scope() as session:

            def count(model, *where):
                return session.scalar(select(func.count()).select_from(model).where(*where))

            assert count(Prediction) == N_TRAIN + N_TEST
            assert count(Prediction, Prediction.suspicion_rank.is_not(None)) == N_TRAIN
            assert count(Prediction, Prediction.suggested_label.is_not(None)) == N_TRAIN + N_TEST
            assert count(Score, Score.kind == "dev_influence") == N_TRAIN
            assert count(Score, Score.kind == "self_influence") == N_TRAIN
            assert count(Influencer, Influencer.role != "proponent") == N_TRAIN * 2 * 3
            k = session.scalar(select(ModelVersion)).metrics["inffeed_k"]
            assert count(Influencer, Influencer.role == "proponent") == (N_TRAIN + N_TEST) * k
            assert count(Item) == N_TRAIN + N_DEV + N_TEST
            assert count(Score, Score.kind == "suspicion_cleanlab") == N_TRAIN
            version = session.scalar(select(ModelVersion))
            compared = {row["b"] for row in version.metrics["agreement"]}
            assert compared == {"self_influence", "loss", "margin", "cleanlab"}
            assert all(-1 <= row["spearman"] <= 1 for row in version.metrics["agreement"])
            assert 0 < version.metrics["dev_macro_f1"] <= 1
            assert version.metrics["dev_macro_f1_inffeed"] >= version.metrics["dev_macro_f1"]
            assert 0 < version.metrics["test_macro_f1_inffeed"] <= 1
            # the second model without the most harmful unreviewed silver (all 120 unreviewed)
            assert 0 <= version.metrics["silver_left_out"] <= N_TRAIN
            assert version.metrics["dev_macro_f1_left_out"] >= version.metrics["dev_macro_f1"]
            assert 0 < version.metrics["test_macro_f1_left_out"] <= 1
            served = version.metrics["ranking_served"]

        page = client.get(
            f"/api/v1/projects/{project_id}/items?order=suspicion&limit=200", headers=headers
        ).json()
        ranks = [i["suspicion_rank"] for i in page["items"]]
        # the scored items by rank, then the unscored ones (dev and test) after them
        assert ranks[:N_TRAIN] == list(range(1, N_TRAIN + 1))
        assert all(rank is None for rank in ranks[N_TRAIN:])
        page["items"] = page["items"][:N_TRAIN]
        first = page["items"][0]
        assert first["estimator"] == "noise_check" and first["model_version"] == 1
        suspicion = [i["scores"]["suspicion"] for i in page["items"]]
        assert suspicion == sorted(suspicion, reverse=True), "most suspicious first"
        if served == "exact_head":  # influence, gain-weighted by a positive factor: harmful first
            assert first["scores"]["dev_influence"] < 0
        detail = client.get(f"/api/v1/items/{first['id']}", headers=headers).json()
        roles = [e["role"] for e in detail["evidence"]]
        assert roles.count("supporter") == 3 and roles.count("opposer") == 3
        assert all(e["item_id"] != first["id"] for e in detail["evidence"])
