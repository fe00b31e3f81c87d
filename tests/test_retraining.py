"""The closed loop on SQLite and PostgreSQL: the retraining policy, one job per trigger, and
what the model versions table says changed between versions."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tests.seeding import hand_over
from tests.support import demo_rows, to_csv

N_ITEMS = 12


@pytest.fixture
def items(client, admin_headers, project) -> list[dict]:
    response = client.post(
        f"/api/v1/projects/{project['id']}/datasets",
        headers=admin_headers,
        files={"file": ("silver.csv", to_csv(demo_rows(N_ITEMS)), "text/csv")},
        data={"kind": "silver"},
    )
    assert response.status_code == 201, response.text
    page = client.get(
        f"/api/v1/projects/{project['id']}/items?order=id&limit=50", headers=admin_headers
    )
    return page.json()["items"]


def _label(client, headers, item: dict, label: str) -> None:
    hand_over(item["id"], "ann")  # as the queue would: annotator 'ann' decides what they hold
    response = client.post(
        f"/api/v1/items/{item['id']}/label",
        headers=headers,
        json={"label": label, "idempotency_key": uuid.uuid4().hex},
    )
    assert response.status_code == 200, response.text


def _flip(item: dict, labels: list[str]) -> str:
    return labels[1 - labels.index(item["current_label"])]


def _jobs(project_id: int) -> list:
    from app.core.db import session_scope
    from app.models import Job

    with session_scope() as session:
        return list(session.scalars(select(Job).where(Job.project_id == project_id)))


def test_policy_is_set_and_cleared_through_the_api(
    client, admin_headers, annotator_headers, project
):
    url = f"/api/v1/projects/{project['id']}"
    assert client.patch(url, headers=admin_headers, json={"retrain_every": 0}).status_code == 422
    assert (
        client.patch(url, headers=annotator_headers, json={"retrain_every": 5}).status_code == 403
    )
    body = client.patch(url, headers=admin_headers, json={"retrain_every": 5}).json()
    assert body["settings"]["retrain_every"] == 5
    body = client.patch(url, headers=admin_headers, json={"estimator": "tracin"}).json()
    assert body["settings"] == {"estimator": "tracin", "retrain_every": 5}, "policy kept"
    body = client.patch(url, headers=admin_headers, json={"retrain_every": None}).json()
    assert "retrain_every" not in body["settings"]


def test_the_nth_correction_starts_one_training_job(
    client, admin_headers, annotator_headers, project, items
):
    labels = project["labels"]
    client.patch(
        f"/api/v1/projects/{project['id']}", headers=admin_headers, json={"retrain_every": 3}
    )
    _label(client, annotator_headers, items[0], _flip(items[0], labels))
    _label(client, annotator_headers, items[1], items[1]["current_label"])  # a confirmation
    _label(client, annotator_headers, items[2], _flip(items[2], labels))
    assert _jobs(project["id"]) == [], "two corrections and a confirmation: not yet"
    _label(client, annotator_headers, items[3], _flip(items[3], labels))
    jobs = _jobs(project["id"])
    assert [(j.kind, j.state) for j in jobs] == [("train_score", "queued")]
    assert jobs[0].params == {"trigger": "3 corrections"} and jobs[0].celery_id
    for item in items[4:8]:  # more corrections while that job waits: still one job
        _label(client, annotator_headers, item, _flip(item, labels))
    assert len(_jobs(project["id"])) == 1


def test_an_undo_is_not_a_correction(client, admin_headers, annotator_headers, project, items):
    client.patch(
        f"/api/v1/projects/{project['id']}", headers=admin_headers, json={"retrain_every": 2}
    )
    _label(client, annotator_headers, items[0], _flip(items[0], project["labels"]))
    undone = client.post(
        f"/api/v1/projects/{project['id']}/undo",
        headers=annotator_headers,
        json={"idempotency_key": uuid.uuid4().hex},
    )
    assert undone.status_code == 200, undone.text
    assert undone.json()["current_label"] == items[0]["current_label"]
    assert _jobs(project["id"]) == [], "a correction and its undo are not two corrections"
    _label(client, annotator_headers, items[1], _flip(items[1], project["labels"]))
    assert _jobs(project["id"]) == [], "the undone correction is none: one correction"
    _label(client, annotator_headers, items[2], _flip(items[2], project["labels"]))
    assert len(_jobs(project["id"])) == 1


def test_by_hand_only_never_starts_a_job(client, admin_headers, annotator_headers, project, items):
    for item in items[:6]:
        _label(client, annotator_headers, item, _flip(item, project["labels"]))
    assert _jobs(project["id"]) == []


def test_concurrent_triggers_make_exactly_one_job(client, admin_headers, project, items):
    """Many sessions pass the count at the same moment; the database keeps one job."""
    from app.core.db import new_session
    from app.models import Project
    from app.services.retraining import maybe_retrain

    client.patch(
        f"/api/v1/projects/{project['id']}", headers=admin_headers, json={"retrain_every": 1}
    )
    _label(client, admin_headers, items[0], _flip(items[0], project["labels"]))
    from app.core.db import session_scope
    from app.models import Job

    with session_scope() as session:  # the hook's own job: out of the way for the race
        session.execute(Job.__table__.delete())
    barrier, started = threading.Barrier(6), []

    def race() -> None:
        with new_session() as session:
            target = session.get(Project, project["id"])
            barrier.wait()
            job = maybe_retrain(session, target)
            if job is not None:
                started.append(job.id)

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(started) == 1 and len(_jobs(project["id"])) == 1


def test_the_database_refuses_a_second_active_job(client, project):
    from app.core.db import session_scope
    from app.models import Job, JobState

    with session_scope() as session:
        session.add(Job(project_id=project["id"], kind="train_score", state=JobState.succeeded))
        session.add(Job(project_id=project["id"], kind="train_score", state=JobState.running))
    with pytest.raises(IntegrityError), session_scope() as session:
        session.add(Job(project_id=project["id"], kind="train_score", state=JobState.queued))


def _store_version(project_id: int, ranked: list[int], watermark: int, metrics: dict) -> None:
    """A version stored the way the worker stores one, then compared with the one before."""
    from app.core.db import session_scope
    from app.models import Job, JobState
    from app.services.model_versions import record_comparison
    from app.services.results import ItemResults, PredictionRow, rank_queue, store_model_version

    with session_scope() as session:
        job = Job(project_id=project_id, kind="train_score", state=JobState.succeeded)
        session.add(job)
        session.flush()
        rows = [PredictionRow(i, "fresh", 0.9, None, r + 1) for r, i in enumerate(ranked)]
        version = store_model_version(
            session,
            project_id=project_id,
            job_id=job.id,
            artifact_path="none.npz",
            estimator="exact_head",
            metrics=metrics,
            label_event_watermark=watermark,
            results=ItemResults(rows, [], []),
        )
        record_comparison(session, version)
        rank_queue(session, project_id, version.id)


def _watermark() -> int:
    from sqlalchemy import func

    from app.core.db import session_scope
    from app.models import LabelEvent

    with session_scope() as session:
        return session.scalar(select(func.coalesce(func.max(LabelEvent.id), 0)))


def test_versions_table_compares_each_version_with_the_one_before(
    client, admin_headers, annotator_headers, project, items
):
    ids = [i["id"] for i in items]
    _store_version(project["id"], ids, 0, {"n_train": N_ITEMS, "dev_macro_f1": 0.5})
    for item in items[:3]:
        _label(client, annotator_headers, item, _flip(item, project["labels"]))
    _label(client, annotator_headers, items[3], items[3]["current_label"])  # no correction
    # the new ranking swaps the first two pending items and keeps the rest in place
    pending = ids[4:]
    reordered = [*ids[:4], pending[1], pending[0], *pending[2:]]
    _store_version(
        project["id"], reordered, _watermark(), {"n_train": N_ITEMS, "dev_macro_f1": 0.6}
    )

    versions = client.get(
        f"/api/v1/projects/{project['id']}/model-versions", headers=annotator_headers
    ).json()
    assert [v["version"] for v in versions] == [2, 1]
    newest, first = versions
    assert newest["corrections"] == 3 and newest["dev_macro_f1"] == 0.6
    assert newest["queue_compared"] == N_ITEMS - 4 and newest["queue_moved"] == 2
    assert newest["new_in_top"] == 0 and newest["top"] == N_ITEMS - 4
    assert first["corrections"] is None and first["queue_moved"] is None


def test_admin_sets_the_policy_on_the_project_page(client, admin_headers, project):
    from tests.seeding import page_login

    csrf = page_login(client, "ada")
    url = f"/projects/{project['id']}"
    response = client.post(f"{url}/retraining", data={"retrain_every": "x", "csrf_token": csrf})
    assert response.status_code == 422 and "whole number" in response.text
    response = client.post(f"{url}/retraining", data={"retrain_every": "4", "csrf_token": csrf})
    assert response.status_code == 200 and "after every <strong>4</strong> corrections" in (
        response.text
    )
    assert "No model yet" in response.text
    response = client.post(f"{url}/retraining", data={"retrain_every": "", "csrf_token": csrf})
    assert "Retraining:\n    by hand only" in response.text
