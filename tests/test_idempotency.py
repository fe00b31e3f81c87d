"""Idempotency keys are each user's own and name one request (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import _make_user
from tests.seeding import add_members
from tests.support import demo_rows, to_csv

REUSED = "was already used for a different request"


@pytest.fixture
def people(client) -> dict[str, dict[str, str]]:
    return {
        name: {"Authorization": f"Bearer {_make_user(name, role)}"}
        for name, role in [("ann", "annotator"), ("bob", "annotator"), ("ada", "admin")]
    }


@pytest.fixture
def queue(client, people) -> int:
    project = client.post(
        "/api/v1/projects",
        headers=people["ada"],
        json={"name": "Keys", "labels": ["fresh", "rotten"]},
    ).json()
    add_members(project["id"], "ann", "bob")
    response = client.post(
        f"/api/v1/projects/{project['id']}/datasets",
        headers=people["ada"],
        files={"file": ("silver.csv", to_csv(demo_rows(12)), "text/csv")},
        data={"kind": "silver"},
    )
    assert response.status_code == 201, response.text
    return project["id"]


def take(client, headers, project_id: int) -> dict:
    response = client.post(f"/api/v1/projects/{project_id}/queue/next", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def label(client, headers, item_id: int, value: str, key: str):
    return client.post(
        f"/api/v1/items/{item_id}/label",
        headers=headers,
        json={"label": value, "idempotency_key": key},
    )


def skip(client, headers, item_id: int, mode: str, key: str):
    return client.post(
        f"/api/v1/items/{item_id}/skip",
        headers=headers,
        json={"mode": mode, "idempotency_key": key},
    )


def history(client, item_id: int, headers) -> list[dict]:
    return client.get(f"/api/v1/items/{item_id}", headers=headers).json()["history"]


def test_two_users_may_use_the_same_key(client, people, queue):
    key = uuid.uuid4().hex
    ann_item, bob_item = take(client, people["ann"], queue), take(client, people["bob"], queue)
    assert label(client, people["ann"], ann_item["id"], "fresh", key).status_code == 200
    response = label(client, people["bob"], bob_item["id"], "rotten", key)
    assert response.status_code == 200, response.text
    assert history(client, bob_item["id"], people["ada"])[-1]["new_label"] == "rotten"
    assert history(client, ann_item["id"], people["ada"])[-1]["new_label"] == "fresh"


def test_same_key_same_request_is_the_same_result(client, people, queue):
    key = uuid.uuid4().hex
    item = take(client, people["ann"], queue)
    first = label(client, people["ann"], item["id"], "fresh", key)
    again = label(client, people["ann"], item["id"], "fresh", key)
    assert first.status_code == again.status_code == 200
    assert first.json()["history"] == again.json()["history"]


def test_same_key_other_label_is_refused_and_changes_nothing(client, people, queue):
    key = uuid.uuid4().hex
    item = take(client, people["ann"], queue)
    assert label(client, people["ann"], item["id"], "fresh", key).status_code == 200
    before = history(client, item["id"], people["ada"])
    response = label(client, people["ann"], item["id"], "rotten", key)
    assert response.status_code == 422 and REUSED in response.json()["detail"]
    assert key in response.json()["detail"]
    assert history(client, item["id"], people["ada"]) == before
    assert (
        client.get(f"/api/v1/items/{item['id']}", headers=people["ada"]).json()["current_label"]
        == "fresh"
    )


def test_a_skip_key_is_not_a_label_key_nor_the_other_skip(client, people, queue):
    key = uuid.uuid4().hex
    skipped = take(client, people["ann"], queue)
    assert skip(client, people["ann"], skipped["id"], "later", key).status_code == 200
    assert skip(client, people["ann"], skipped["id"], "later", key).json()["duplicate"] is True
    other_mode = skip(client, people["ann"], skipped["id"], "pass", key)
    assert other_mode.status_code == 422 and REUSED in other_mode.json()["detail"]
    nxt = take(client, people["ann"], queue)
    assert nxt["id"] != skipped["id"]
    response = label(client, people["ann"], nxt["id"], "fresh", key)
    assert response.status_code == 422 and REUSED in response.json()["detail"]
    assert [e["source"] for e in history(client, nxt["id"], people["ada"])] == []

    labelled_key = uuid.uuid4().hex  # and a label's key is not a skip's
    assert label(client, people["ann"], nxt["id"], "fresh", labelled_key).status_code == 200
    third = take(client, people["ann"], queue)
    response = skip(client, people["ann"], third["id"], "pass", labelled_key)
    assert response.status_code == 422 and REUSED in response.json()["detail"]


def test_an_undo_key_is_not_a_label_key(client, people, queue):
    key = uuid.uuid4().hex
    item = take(client, people["ann"], queue)
    assert label(client, people["ann"], item["id"], "fresh", key).status_code == 200
    undo = client.post(
        f"/api/v1/projects/{queue}/undo", headers=people["ann"], json={"idempotency_key": key}
    )
    assert undo.status_code == 422 and REUSED in undo.json()["detail"]
    assert history(client, item["id"], people["ada"])[-1]["source"] == "annotator"
