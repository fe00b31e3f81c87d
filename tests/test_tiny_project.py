"""A first project is small: a real worker trains it, or says plainly what is missing.

A tester's 20 silver, 6 gold dev and 6 test items failed with "influencers_dev has 20
proponents, k_grid needs 25"; two items failed cleanlab's 5-fold split. Both now train; one
label alone is refused before any embedding, with the reason on the job.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support import admin_headers, to_csv, upload, upload_demo_project, wait_until
from tests.test_worker import JOB_TIMEOUT_S, live_env  # noqa: F401 (the fixture)


def _project(client, headers, name: str, rows: list[tuple[str, str]]) -> int:
    project = client.post(
        "/api/v1/projects", headers=headers, json={"name": name, "labels": ["fresh", "rotten"]}
    ).json()
    data = to_csv(
        [{"id": str(i), "text": text, "label": label} for i, (text, label) in enumerate(rows)]
    )
    assert upload(client, headers, project["id"], data).status_code == 201
    return project["id"]


def test_tiny_projects_train_or_fail_with_a_reason(live_env, tmp_path):  # noqa: F811
    from app.cli.worker_process import start_worker, stop_worker
    from app.core.db import session_scope
    from app.main import create_app
    from app.models import ModelVersion

    with TestClient(create_app()) as client:
        headers = admin_headers()
        projects = {
            "tiny": upload_demo_project(
                client, headers, "tiny", {"silver": 20, "gold_dev": 6, "test": 6}
            ),
            "two": _project(client, headers, "two", [("a fine film", "fresh"), ("dull", "rotten")]),
            "one label": _project(
                client,
                headers,
                "one label",
                [("good", "fresh"), ("great", "fresh"), ("ok", "fresh")],
            ),
        }
        worker = start_worker(tmp_path / "worker.log")
        try:
            jobs = {
                name: client.post(f"/api/v1/projects/{pid}/jobs", headers=headers, json={}).json()
                for name, pid in projects.items()
            }
            final: dict[str, dict] = {}

            def finished() -> bool:
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
                for name, job in jobs.items():
                    polled = client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json()
                    if polled["state"] in ("succeeded", "failed"):
                        final[name] = polled
                return len(final) == len(jobs)

            wait_until(finished, JOB_TIMEOUT_S, interval=0.2, what="the three jobs")
        finally:
            stop_worker(worker)

    assert final["tiny"]["state"] == "succeeded", final["tiny"]
    assert final["two"]["state"] == "succeeded", final["two"]
    assert final["one label"]["state"] == "failed"
    assert final["one label"]["error"] == (
        "training needs items of at least two labels; upload a dataset first"
    )
    with session_scope() as session:
        versions = {v.project_id: v.metrics for v in session.scalars(select(ModelVersion))}
    assert 1 <= versions[projects["tiny"]]["inffeed_k"] <= 20
    assert versions[projects["tiny"]]["n_train"] == 20
    assert versions[projects["two"]]["n_train"] == 2
    assert projects["one label"] not in versions
