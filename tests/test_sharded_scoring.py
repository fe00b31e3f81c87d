"""Sharded scoring gives the unsharded scores: in the engine, and through real Celery workers
on PostgreSQL + Redis with one and with two workers (chords over the heavy queue)."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support import REDIS_URL as SHARED_REDIS_URL
from tests.support import (
    admin_headers,
    assay_env,
    demo_rows,
    postgres_database,
    upload_demo_project,
    wait_until,
)

# a Redis database of its own: no other test file flushes it or runs workers on it
REDIS_URL = SHARED_REDIS_URL.rsplit("/", 1)[0] + "/13"
N_TRAIN, N_GOLD_TRAIN, N_DEV, N_TEST = 150, 30, 40, 30
SHARD_SIZE = 40  # 4 scoring shards; embedding shards of 48 texts (batches of 16)
JOB_TIMEOUT_S = 600


def test_merged_shards_equal_one_unsharded_run():
    from workers.engine import score_training_set
    from workers.engine.shards import fit_state, merge_rows, restore, row_shards, score_rows
    from workers.engine.suggestions import inffeed_suggestions

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16))
    y = (X[:, 0] + 0.8 * rng.normal(size=300) > 0).astype(np.int64)
    X_dev = rng.normal(size=(60, 16))
    y_dev = (X_dev[:, 0] > 0).astype(np.int64)
    gold = rng.random(300) < 0.3  # gold training rows: influence targets beside dev
    whole = score_training_set(
        X, y, 2, X_dev=X_dev, y_dev=y_dev, gold_rows=gold, calibrate=True, l2=1e-3, k=3
    )
    inffeed = inffeed_suggestions(whole.influence, X, y, X_dev, y_dev)

    state = fit_state(X, y, 2, l2=1e-3, X_dev=X_dev, y_dev=y_dev, calibrate=True)
    inf = restore(state, X, y, X_dev=X_dev, y_dev=y_dev)
    assert inf.is_calibrated  # the shards serve the calibrated head too
    with pytest.raises(ValueError, match="pass X_dev and y_dev"):
        restore(state, X, y)
    parts = [
        score_rows(
            inf,
            X,
            y,
            rows,
            k=3,
            X_dev=X_dev,
            y_dev=y_dev,
            gold_rows=gold,
            adjustment=state.adjustment,
        )
        for rows in row_shards(len(y), 70)
    ]
    assert len(parts) == 5 and len(parts[-1].loss) == 20
    merged, suggestions = merge_rows(parts[::-1], inf)  # any order of arrival

    for field in ("probs", "loss", "self_influence", "dev_influence", "suspicion"):
        np.testing.assert_allclose(
            getattr(merged, field), getattr(whole, field), rtol=1e-10, atol=1e-14
        )
    assert np.array_equal(merged.rank, whole.rank)
    for field in ("supporters_idx", "opposers_idx"):
        assert np.array_equal(getattr(merged.top, field), getattr(whole.top, field))
    for field in ("supporters_val", "opposers_val"):
        np.testing.assert_allclose(
            getattr(merged.top, field), getattr(whole.top, field), rtol=1e-10, atol=1e-14
        )
    assert np.array_equal(suggestions.label, inffeed.train.label)
    assert np.array_equal(suggestions.influencer_idx, inffeed.train.influencer_idx)
    with pytest.raises(ValueError, match="shards hold 280 rows"):
        merge_rows(parts[:4], inf)


def test_a_state_pickled_before_calibration_existed_restores_uncalibrated():
    from workers.engine.shards import fit_state, restore

    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    state = fit_state(X, y, 2, l2=1e-3)
    del state.__dict__["calibrated"]  # the field that older versions did not have
    old = pickle.loads(pickle.dumps(state))
    assert old.calibrated is False
    assert not restore(old, X, y).is_calibrated


def test_embedding_shards_reproduce_one_call():
    """Shards follow the length order in whole batches, so every number is the same."""
    from app.core.config import get_settings
    from workers.engine import embed_texts
    from workers.engine.shards import embedding_shards

    texts = [row["text"] for row in demo_rows(70)]
    encoder = get_settings().encoder_path()
    whole = embed_texts(texts, encoder, batch_size=8, max_length=64)
    shards = embedding_shards(texts, batch_size=8, rows=20)  # rounded up to 24 texts
    assert [len(s) for s in shards] == [24, 24, 22]
    assert sorted(np.concatenate(shards).tolist()) == list(range(70))
    merged = np.empty_like(whole)
    for rows in shards:
        merged[rows] = embed_texts([texts[i] for i in rows], encoder, batch_size=8, max_length=64)
    assert np.array_equal(merged, whole)


def _run_job(client, headers, data_dir, name: str, shard_size: int, workers: int) -> dict:
    """A fresh project scored by ``workers`` worker processes; its results by external id."""
    from app.cli.worker_process import start_worker, stop_worker
    from workers.celery_app import current_celery

    # gold training rows join dev as influence targets, in the shards as in one run
    sizes = {"gold_train": N_GOLD_TRAIN, "silver": N_TRAIN - N_GOLD_TRAIN, "gold_dev": N_DEV}
    project_id = upload_demo_project(client, headers, name, {**sizes, "test": N_TEST})
    # an empty embeddings cache, so that the sharded runs embed in shards
    shutil.rmtree(data_dir / "artifacts" / "embeddings", ignore_errors=True)
    logs = [data_dir / f"{name}-worker-{i}.log" for i in range(workers)]
    env = {"ASSAY_SHARD_SIZE": str(shard_size)}
    processes = [
        start_worker(log, env=env, hostname=f"{name}-{i}@%h") for i, log in enumerate(logs)
    ]
    try:
        if workers > 1:  # all of them ready before the job, so that they share it
            wait_until(lambda: len(current_celery().control.ping(timeout=1.0)) == workers, 180)
        job = client.post(f"/api/v1/projects/{project_id}/jobs", headers=headers, json={}).json()

        def finished():
            polled = client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json()
            for process, log in zip(processes, logs, strict=True):
                assert process.poll() is None, log.read_text()[-3000:]
            return polled if polled["state"] in ("succeeded", "failed") else None

        final = wait_until(finished, JOB_TIMEOUT_S, interval=0.5, what=f"job {name}")
    finally:
        for process in processes:
            stop_worker(process)
    assert final["state"] == "succeeded", final
    return {"results": _results(project_id), "logs": [log.read_text() for log in logs]}


def _results(project_id: int) -> dict:
    from app.core.db import session_scope
    from app.models import Influencer, Item, ModelVersion, Prediction, Score

    with session_scope() as session:
        key = {
            item.id: (item.dataset_kind, item.external_id)
            for item in session.scalars(select(Item).where(Item.project_id == project_id))
        }
        version = session.scalar(select(ModelVersion).where(ModelVersion.project_id == project_id))
        scores: dict[str, dict] = {}
        for score in session.scalars(select(Score).where(Score.model_version_id == version.id)):
            scores.setdefault(score.kind, {})[key[score.item_id]] = score.value
        predictions = {
            key[p.item_id]: (p.label, p.confidence, p.suggested_label, p.suspicion_rank)
            for p in session.scalars(
                select(Prediction).where(Prediction.model_version_id == version.id)
            )
        }
        evidence = {
            (key[e.target_item_id], e.role, e.rank): (key[e.train_item_id], e.value)
            for e in session.scalars(
                select(Influencer).where(Influencer.model_version_id == version.id)
            )
        }
        metrics = {k: v for k, v in version.metrics.items() if k != "agreement"}
        return {
            "scores": scores,
            "predictions": predictions,
            "evidence": evidence,
            "metrics": metrics,
            "estimator": version.estimator,
            "agreement": version.metrics["agreement"],
        }


def _assert_same(sharded: dict, whole: dict) -> None:
    assert sharded["estimator"] == whole["estimator"] == "noise_check"
    assert (
        set(sharded["scores"])
        == set(whole["scores"])
        >= {
            "loss",
            "self_influence",
            "dev_influence",
            "suspicion",
            "suspicion_cleanlab",
        }
    )
    for kind, values in whole["scores"].items():
        items = sorted(values)
        assert sorted(sharded["scores"][kind]) == items, kind
        np.testing.assert_allclose(
            [sharded["scores"][kind][i] for i in items],
            [values[i] for i in items],
            rtol=1e-7,
            atol=1e-12,
            err_msg=kind,
        )
    assert set(sharded["predictions"]) == set(whole["predictions"])
    for item, (label, confidence, suggested, rank) in whole["predictions"].items():
        other = sharded["predictions"][item]
        assert (other[0], other[2], other[3]) == (label, suggested, rank), item
        assert other[1] == pytest.approx(confidence, rel=1e-7)
    assert set(sharded["evidence"]) == set(whole["evidence"])
    for slot, (train_item, value) in whole["evidence"].items():
        assert sharded["evidence"][slot][0] == train_item, slot
        assert sharded["evidence"][slot][1] == pytest.approx(value, rel=1e-7, abs=1e-12)
    for name, value in whole["metrics"].items():
        if isinstance(value, str):
            assert sharded["metrics"][name] == value, name
        else:
            assert sharded["metrics"][name] == pytest.approx(value, rel=1e-7), name


@pytest.fixture
def production(tmp_path):
    redis.Redis.from_url(REDIS_URL).flushdb()
    with (
        postgres_database() as url,
        assay_env(tmp_path, database_url=url, broker_url=REDIS_URL, embed_batch_size="16"),
    ):
        yield tmp_path


def test_sharded_workers_score_as_one_unsharded_worker(production):
    from app.main import create_app

    with TestClient(create_app()) as client:
        headers = admin_headers()
        whole = _run_job(client, headers, production, "whole", shard_size=0, workers=1)
        assert not any("assay.score_shard[" in log for log in whole["logs"])
        for workers in (1, 2):
            run = _run_job(client, headers, production, f"sharded{workers}", SHARD_SIZE, workers)
            _assert_same(run["results"], whole["results"])
            assert "5 embedding and 4 scoring shards, as chords" in "".join(run["logs"])
            for log in run["logs"]:  # every worker took part in both sharded steps
                assert "assay.embed_shard[" in log and "assay.score_shard[" in log
            assert sum(log.count("assay.score_shard[") for log in run["logs"]) >= 4
    assert not list((production / "artifacts" / "shards").iterdir()), "shard files left"


def test_embedded_mode_runs_the_shards_in_process(tmp_path):
    """The filesystem broker has no result backend for chords: the training task runs the
    same shard steps one after another, with the same results."""
    from app.main import create_app

    with (
        assay_env(tmp_path, embed_batch_size="16"),
        TestClient(create_app()) as client,
    ):
        headers = admin_headers()
        whole = _run_job(client, headers, tmp_path, "whole", shard_size=0, workers=1)
        run = _run_job(client, headers, tmp_path, "sharded", SHARD_SIZE, workers=1)
        _assert_same(run["results"], whole["results"])
        assert "5 embedding and 4 scoring shards, in this process" in run["logs"][0]
        assert "assay.embed_shard[" not in run["logs"][0]  # no chords
    assert not list((tmp_path / "artifacts" / "shards").iterdir()), "shard files left"
