"""The JSON API on SQLite and on PostgreSQL: uploads, jobs, items, decisions, auth."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from tests.seeding import add_members, hand_over
from tests.support import demo_rows, to_csv, upload


def count_rows(model) -> int:
    from app.core.db import session_scope

    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_upload_csv_and_jsonl_and_list_items(client, admin_headers, project):
    rows = demo_rows(30)
    response = upload(client, admin_headers, project["id"], to_csv(rows))
    assert response.status_code == 201, response.text
    assert response.json()[0]["row_count"] == 30
    jsonl = "\n".join(
        json.dumps({"text": f"dev {i}", "label": "rotten", "split": "dev", "id": f"d{i}"})
        for i in range(5)
    ).encode()
    response = upload(client, admin_headers, project["id"], jsonl, filename="dev.jsonl")
    assert response.status_code == 201, response.text
    assert [d["kind"] for d in response.json()] == ["gold_dev"]

    page = client.get(
        f"/api/v1/projects/{project['id']}/items?order=id&limit=20", headers=admin_headers
    ).json()
    assert len(page["items"]) == 20 and page["next_cursor"]
    rest = client.get(
        f"/api/v1/projects/{project['id']}/items?order=id&limit=20&cursor={page['next_cursor']}",
        headers=admin_headers,
    ).json()
    ids = [i["id"] for i in page["items"] + rest["items"]]
    assert len(ids) == 35 == len(set(ids)) and rest["next_cursor"] is None
    first = page["items"][0]
    assert first["text"] == rows[0]["text"] and first["silver_label"] == rows[0]["label"]


BAD_UPLOADS = [
    pytest.param(b"body,label\nnice film,fresh\n", "silver.csv", 1, "text", id="wrong-columns"),
    pytest.param(
        b"text,label\ngood,fresh\nbad,mouldy\n", "silver.csv", 3, "label", id="unknown-label"
    ),
    pytest.param(b"", "silver.csv", None, None, id="empty-file"),
    pytest.param(b"text,label\n", "silver.csv", None, None, id="header-only"),
    pytest.param(
        b"text,label\ngood,fresh\ncaf\xe9 bad,rotten\n", "silver.csv", 3, None, id="bad-encoding"
    ),
    pytest.param(
        b'{"text": "ok", "label": "fresh"}\n{"text": "ok", ', "x.jsonl", 2, None, id="bad-json"
    ),
    pytest.param(b"text,label\ngood,\n", "silver.csv", 2, "label", id="empty-label"),
    pytest.param(
        b"id,text,label\n1,a,fresh\n1,b,rotten\n", "silver.csv", 3, "id", id="duplicate-id"
    ),
]


@pytest.mark.parametrize(("data", "filename", "line", "field"), BAD_UPLOADS)
def test_bad_upload_names_line_and_field_and_stores_nothing(
    client, admin_headers, project, data, filename, line, field
):
    from app.models import Dataset, Item

    # a good file first: the bad one must not disturb it either
    assert upload(client, admin_headers, project["id"], to_csv(demo_rows(3))).status_code == 201
    response = upload(client, admin_headers, project["id"], data, filename=filename)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["file"] == filename and error["line"] == line and error["field"] == field
    assert error["message"]
    assert count_rows(Item) == 3 and count_rows(Dataset) == 1


def test_huge_upload_is_refused(client, admin_headers, project, monkeypatch):
    from app.core.config import get_settings
    from app.models import Item

    monkeypatch.setattr(get_settings(), "max_upload_bytes", 1000)
    response = upload(client, admin_headers, project["id"], to_csv(demo_rows(50)))
    assert response.status_code == 413 and "upload limit" in response.json()["message"]
    assert count_rows(Item) == 0


def test_auth_roles(client, admin_headers, annotator_headers, project):
    assert client.get("/api/v1/projects").status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert client.get("/api/v1/projects", headers=bad).status_code == 401
    assert client.get("/api/v1/projects", headers=annotator_headers).status_code == 200
    forbidden = client.post(
        "/api/v1/projects", headers=annotator_headers, json={"name": "x", "labels": ["a", "b"]}
    )
    assert forbidden.status_code == 403
    assert upload(client, annotator_headers, project["id"], to_csv(demo_rows(3))).status_code == 403


def test_password_login_issues_token(client, admin_headers):
    response = client.post(
        "/api/v1/auth/token", json={"username": "ada", "password": "correct horse battery"}
    )
    assert response.status_code == 201
    token = response.json()["token"]
    assert (
        client.get("/api/v1/projects", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    wrong = client.post("/api/v1/auth/token", json={"username": "ada", "password": "nope"})
    assert wrong.status_code == 401


def test_job_is_accepted_and_polled_and_double_start_conflicts(client, admin_headers, project):
    upload(client, admin_headers, project["id"], to_csv(demo_rows(10)))
    response = client.post(
        f"/api/v1/projects/{project['id']}/jobs",
        headers=admin_headers,
        json={"kind": "train_score"},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["state"] == "queued" and job["progress"] == 0.0
    polled = client.get(f"/api/v1/jobs/{job['id']}", headers=admin_headers).json()
    assert polled["id"] == job["id"] and polled["stage"] == "queued"
    again = client.post(f"/api/v1/projects/{project['id']}/jobs", headers=admin_headers, json={})
    assert again.status_code == 409 and again.json()["detail"]["job_id"] == job["id"]
    assert client.get("/api/v1/jobs/999999", headers=admin_headers).status_code == 404


def test_label_decision_is_idempotent_and_recorded(
    client, admin_headers, annotator_headers, project
):
    from app.models import LabelEvent

    upload(client, admin_headers, project["id"], to_csv(demo_rows(5)))
    item = client.get(
        f"/api/v1/projects/{project['id']}/items?order=id&limit=1", headers=admin_headers
    ).json()["items"][0]
    new = "rotten" if item["silver_label"] == "fresh" else "fresh"
    body = {"label": new, "idempotency_key": uuid.uuid4().hex}
    hand_over(item["id"], "ann")  # as the queue would: an annotator decides what they hold
    first = client.post(f"/api/v1/items/{item['id']}/label", headers=annotator_headers, json=body)
    assert first.status_code == 200, first.text
    second = client.post(f"/api/v1/items/{item['id']}/label", headers=annotator_headers, json=body)
    assert second.status_code == 200
    detail = second.json()
    assert detail["gold_label"] == new and detail["status"] == "reviewed"
    assert [(e["old_label"], e["new_label"]) for e in detail["history"]] == [
        (item["silver_label"], new)
    ]
    assert count_rows(LabelEvent) == 1
    bad = client.post(
        f"/api/v1/items/{item['id']}/label",
        headers=annotator_headers,
        json={"label": "mouldy", "idempotency_key": uuid.uuid4().hex},
    )
    assert bad.status_code == 422 and "unknown label" in bad.json()["detail"]
    assert count_rows(LabelEvent) == 1


def test_openapi_document(client):
    doc = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/projects/{project_id}/items" in doc["paths"]
    assert "/api/v1/jobs/{job_id}" in doc["paths"]


def test_project_estimator_is_chosen_and_changed(client, admin_headers, annotator_headers):
    from app.core.config import get_settings

    default = client.post(
        "/api/v1/projects", headers=admin_headers, json={"name": "a", "labels": ["x", "y"]}
    ).json()
    assert default["settings"]["estimator"] == get_settings().default_estimator
    chosen = client.post(
        "/api/v1/projects",
        headers=admin_headers,
        json={"name": "b", "labels": ["x", "y"], "estimator": "tracin"},
    )
    assert chosen.status_code == 201 and chosen.json()["settings"]["estimator"] == "tracin"
    unknown = client.post(
        "/api/v1/projects",
        headers=admin_headers,
        json={"name": "c", "labels": ["x", "y"], "estimator": "astrology"},
    )
    assert unknown.status_code == 422 and "unknown estimator" in unknown.text
    url = f"/api/v1/projects/{default['id']}"
    add_members(default["id"], "ann")  # a member, refused by role (a non-member: 404)
    assert (
        client.patch(url, headers=annotator_headers, json={"estimator": "loss"}).status_code == 403
    )
    changed = client.patch(url, headers=admin_headers, json={"estimator": "cleanlab"})
    assert changed.status_code == 200 and changed.json()["settings"]["estimator"] == "cleanlab"
    assert client.get(url, headers=admin_headers).json()["settings"]["estimator"] == "cleanlab"
    bad = client.patch(url, headers=admin_headers, json={"estimator": "astrology"})
    assert bad.status_code == 422
    # a ranking of another kind of project: refused with its reason, and nothing else in the
    # same request applied
    other_kind = client.patch(
        url, headers=admin_headers, json={"estimator": "cox_dev", "overlap": 2, "guidelines": "g"}
    )
    assert other_kind.status_code == 422 and "unknown estimator 'cox_dev'" in other_kind.text
    after = client.get(url, headers=admin_headers).json()
    assert after["settings"]["estimator"] == "cleanlab"
    assert after["settings"].get("overlap", 1) == 1 and not after["settings"].get("guidelines")
