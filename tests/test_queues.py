"""Heavy tasks go to the heavy queue and light ones to the light queue (real Redis, real
workers): a light-only worker leaves a training job queued; a heavy worker then trains it in
shards, and the merge waits for the light worker."""

from __future__ import annotations

import time

import redis
from fastapi.testclient import TestClient

from tests.support import REDIS_URL as SHARED_REDIS_URL
from tests.support import (
    admin_headers,
    assay_env,
    postgres_database,
    upload_demo_project,
    wait_until,
)

# a Redis database of its own: no other test file flushes it or runs workers on it
REDIS_URL = SHARED_REDIS_URL.rsplit("/", 1)[0] + "/12"
JOB_TIMEOUT_S = 600


def test_routing_settings():
    from app.core.config import Settings
    from workers.celery_app import (
        IMPORT_DATASET,
        MERGE_SHARDS,
        SCORE_SHARD,
        TRAIN_AND_SCORE,
        routing,
    )

    config = routing(Settings(heavy_queue="gpu", light_queue="cpu", broker_url=REDIS_URL))
    routes = config["task_routes"]
    assert routes[TRAIN_AND_SCORE] == routes[SCORE_SHARD] == {"queue": "gpu"}
    assert routes[IMPORT_DATASET] == routes[MERGE_SHARDS] == {"queue": "cpu"}
    assert config["task_default_queue"] == "cpu"
    assert config["result_backend"] == REDIS_URL
    assert "result_backend" not in routing(Settings())  # embedded: shards run in-process


def test_light_worker_leaves_heavy_job_queued_until_a_heavy_worker_starts(tmp_path):
    from app.cli.worker_process import start_worker, stop_worker
    from app.main import create_app
    from workers.celery_app import current_celery

    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    with (
        postgres_database() as url,
        assay_env(tmp_path, database_url=url, broker_url=REDIS_URL, shard_size="40"),
        TestClient(create_app()) as client,
    ):
        headers = admin_headers()
        project_id = upload_demo_project(client, headers, "p", {"silver": 100, "gold_dev": 30})

        logs = {name: tmp_path / f"{name}.log" for name in ("light", "heavy")}
        light = start_worker(logs["light"], queues="light", hostname="light@%h")
        heavy = None
        try:
            wait_until(lambda: current_celery().control.ping(timeout=1.0), 180, what="light")
            job = client.post(
                f"/api/v1/projects/{project_id}/jobs", headers=headers, json={}
            ).json()

            def state() -> dict:
                return client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json()

            # the light worker is up and answering; give it a moment in which it could have
            # taken the message, then see the message still waiting in the heavy queue
            assert current_celery().control.ping(timeout=2.0)
            time.sleep(3)
            assert broker.llen("heavy") == 1 and broker.llen("light") == 0
            assert state()["state"] == "queued"

            heavy = start_worker(logs["heavy"], queues="heavy", hostname="heavy@%h")
            final = wait_until(
                lambda: (s := state())["state"] in ("succeeded", "failed") and s,
                JOB_TIMEOUT_S,
                interval=0.5,
                what="the job",
            )
        finally:
            for process in (light, heavy):
                if process is not None:
                    stop_worker(process)
        assert final["state"] == "succeeded", final
        light_log, heavy_log = (logs[name].read_text() for name in ("light", "heavy"))
        assert "assay.train_and_score[" in heavy_log and "assay.score_shard[" in heavy_log
        assert "assay.merge_shards[" in light_log and "assay.merge_shards[" not in heavy_log
        assert "assay.train_and_score[" not in light_log and "assay.score_shard[" not in light_log
