"""Evidence says what the model learned from: after a real training job and a correction of one
of an item's supporters, the API's evidence entry shows the label the model trained on, the
label now, who changed it and when, where the trained-on label came from, and the influence in
words (SQLite and PostgreSQL, a real worker)."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi.testclient import TestClient

from tests.support import admin_headers, upload_demo_project, wait_until
from tests.test_worker import JOB_TIMEOUT_S, live_env  # noqa: F401 (the fixture)

SIZES = {"silver": 30, "gold_dev": 10}


def train(client, headers, project_id: int, log_path) -> None:
    """One training job on a real worker, to success."""
    from app.cli.worker_process import start_worker, stop_worker

    worker = start_worker(log_path)
    try:
        job = client.post(f"/api/v1/projects/{project_id}/jobs", headers=headers, json={}).json()

        def finished() -> bool:
            assert worker.poll() is None, log_path.read_text()[-3000:]
            state = client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json()["state"]
            assert state != "failed", log_path.read_text()[-3000:]
            return state == "succeeded"

        wait_until(finished, JOB_TIMEOUT_S, interval=0.2, what="the training job")
    finally:
        stop_worker(worker)


def test_corrected_supporter_shows_trained_and_current_label(live_env, tmp_path):  # noqa: F811
    from app.main import create_app

    with TestClient(create_app()) as client:
        headers = admin_headers()
        project_id = upload_demo_project(client, headers, "p", SIZES)
        train(client, headers, project_id, tmp_path / "worker.log")

        items = client.get(
            f"/api/v1/projects/{project_id}/items?order=suspicion&limit=5", headers=headers
        ).json()["items"]
        target = items[0]["id"]
        before = client.get(f"/api/v1/items/{target}", headers=headers).json()["evidence"]
        roles = {e["role"] for e in before}
        assert roles == {"supporter", "opposer", "proponent"}, roles
        for e in before:  # nothing changed since the training
            assert e["train_label"] == e["current_label"] == e["label"], e
            assert e["changed_by"] is None and e["changed_at"] is None
            assert e["label_source"] == "silver"
            verb = {"supporter": "raise", "opposer": "lower", "proponent": "raise"}[e["role"]]
            assert e["effect"].startswith(f"removing it would {verb} this item's loss of '")
        suggested = items[0]["suggested_label"]
        assert {e["target_label"] for e in before if e["role"] == "proponent"} == {suggested}
        assert {e["target_label"] for e in before if e["role"] != "proponent"} == {
            items[0]["current_label"]
        }

        supporter = next(e for e in before if e["role"] == "supporter")
        trained = supporter["train_label"]
        corrected = "fresh" if trained == "rotten" else "rotten"
        response = client.post(
            f"/api/v1/items/{supporter['item_id']}/label",
            headers=headers,
            json={"label": corrected, "idempotency_key": uuid.uuid4().hex},
        )
        assert response.status_code == 200, response.text

        after = client.get(f"/api/v1/items/{target}", headers=headers).json()["evidence"]
        entry = next(
            e for e in after if e["role"] == "supporter" and e["item_id"] == supporter["item_id"]
        )
        assert entry["train_label"] == trained, "the label the model learned from stays"
        assert entry["current_label"] == entry["label"] == corrected
        assert entry["changed_by"] == "ada"
        assert datetime.fromisoformat(entry["changed_at"]).year >= 2025
        assert entry["label_source"] == "silver"
        assert entry["value"] == supporter["value"] and entry["effect"] == supporter["effect"]
