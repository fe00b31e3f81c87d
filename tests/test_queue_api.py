"""The shared queue over the API and its pages' fragments, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import _make_user
from tests.seeding import silver_queue, take


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def people(client) -> dict[str, dict[str, str]]:
    return {
        name: {"Authorization": f"Bearer {_make_user(name, role)}"}
        for name, role in [
            ("ann", "annotator"),
            ("bob", "annotator"),
            ("rita", "reviewer"),
            ("ada", "admin"),
        ]
    }


@pytest.fixture
def queue(client, people) -> int:
    return silver_queue(client, people["ada"], "Reviews", "ann", "bob", "rita")


def label(client, headers, item_id: int, value: str, idem: str | None = None):
    return client.post(
        f"/api/v1/items/{item_id}/label",
        headers=headers,
        json={"label": value, "idempotency_key": idem or key()},
    )


def test_overlap_is_set_by_admins_and_checked(client, people, queue):
    url = f"/api/v1/projects/{queue}"
    assert client.get(url, headers=people["ann"]).json()["settings"].get("overlap") is None
    assert client.patch(url, headers=people["ann"], json={"overlap": 2}).status_code == 403
    for bad in (0, 21, "two"):
        response = client.patch(url, headers=people["ada"], json={"overlap": bad})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "overlap"]
    changed = client.patch(url, headers=people["ada"], json={"overlap": 2})
    assert changed.status_code == 200 and changed.json()["settings"]["overlap"] == 2
    assert changed.json()["settings"]["estimator"]  # other settings are kept


def test_two_annotators_vote_and_agreement_is_reported(client, people, queue):
    client.patch(f"/api/v1/projects/{queue}", headers=people["ada"], json={"overlap": 2})
    held = take(client, people["ann"], queue)
    other = take(client, people["ada"], queue)
    assert other["id"] != held["id"]  # ann holds hers; ada gets the next one
    skip = {"mode": "pass", "idempotency_key": key()}
    assert client.post(
        f"/api/v1/items/{other['id']}/skip", headers=people["ada"], json=skip
    ).json() == {"item_id": other["id"], "state": "pass", "duplicate": False}
    plan = [("fresh", "fresh"), ("rotten", "fresh"), ("rotten", "rotten")]
    for first, second in plan:
        item = take(client, people["ann"], queue)
        assert label(client, people["ann"], item["id"], first).json()["status"] == "pending"
        assert take(client, people["ann"], queue)["id"] != item["id"]  # never twice to ann
        assert take(client, people["bob"], queue)["id"] == item["id"]  # the others keep it
        final = label(client, people["bob"], item["id"], second).json()
        assert final["status"] == ("reviewed" if first == second else "disputed")
    found = client.get(f"/api/v1/projects/{queue}/agreement", headers=people["ann"]).json()
    assert found["overlap_items"] == 3 and found["annotators"] == 2
    # one disagreement in three: kappa 0.4 (observed 2/3, chance 4/9); alpha 0.4444
    assert found["cohen_kappa"] == [
        {"a": "ann", "b": "bob", "items": 3, "kappa": pytest.approx(0.4)}
    ]
    assert found["krippendorff_alpha"] == pytest.approx(1 - 5 * 2 / (3 * 3 * 2))


def test_undo_over_the_api_and_twice_with_one_key(client, people, queue):
    item = take(client, people["ann"], queue)
    label(client, people["ann"], item["id"], "rotten")
    body = {"idempotency_key": key()}
    undone = client.post(f"/api/v1/projects/{queue}/undo", headers=people["ann"], json=body)
    assert undone.status_code == 200, undone.text
    assert undone.json()["status"] == "pending"
    assert undone.json()["current_label"] == item["silver_label"]
    again = client.post(f"/api/v1/projects/{queue}/undo", headers=people["ann"], json=body)
    assert again.status_code == 200
    assert [e["source"] for e in again.json()["history"]] == ["annotator", "undo"]
    assert take(client, people["ann"], queue)["id"] == item["id"]
    nothing = client.post(
        f"/api/v1/projects/{queue}/undo", headers=people["ann"], json={"idempotency_key": key()}
    )
    assert nothing.status_code == 409 and "nothing to undo" in nothing.json()["detail"]


def test_reviewer_overrides_and_annotators_may_not(client, people, queue):
    item = take(client, people["ann"], queue)
    label(client, people["ann"], item["id"], "fresh")
    body = {"label": "rotten", "idempotency_key": key()}
    url = f"/api/v1/items/{item['id']}/review"
    assert client.post(url, headers=people["bob"], json=body).status_code == 403
    reviewed = client.post(url, headers=people["rita"], json=body)
    assert reviewed.status_code == 200, reviewed.text
    detail = reviewed.json()
    assert (detail["gold_label"], detail["status"]) == ("rotten", "reviewed")
    last = detail["history"][-1]
    assert (last["source"], last["old_label"], last["new_label"]) == ("review", "fresh", "rotten")
    assert (
        client.post(url, headers=people["rita"], json=body).json()["history"] == (detail["history"])
    )  # sent twice: one event
    bad = client.post(
        url, headers=people["rita"], json={"label": "mouldy", "idempotency_key": key()}
    )
    assert bad.status_code == 422 and "unknown label 'mouldy'" in bad.json()["detail"]


def test_stale_decisions_are_refused_with_409(client, people, queue):
    item = take(client, people["ann"], queue)
    assert label(client, people["ann"], item["id"], "fresh").status_code == 200
    late = label(client, people["bob"], item["id"], "rotten")
    assert late.status_code == 409 and "already decided" in late.json()["detail"]
    # an admin or reviewer labelling a decided item overrides it instead
    overridden = label(client, people["rita"], item["id"], "rotten")
    assert overridden.json()["history"][-1]["source"] == "review"
    short = client.post(
        f"/api/v1/items/{item['id']}/skip",
        headers=people["bob"],
        json={"mode": "sideways", "idempotency_key": "k"},
    )
    assert short.status_code == 422
    assert {tuple(e["loc"]) for e in short.json()["detail"]} == {
        ("body", "mode"),
        ("body", "idempotency_key"),
    }


def test_queue_ends_with_204(client, people, queue):
    for _ in range(12):
        item = take(client, people["ann"], queue)
        label(client, people["ann"], item["id"], "fresh")
    empty = client.post(f"/api/v1/projects/{queue}/queue/next", headers=people["ann"])
    assert empty.status_code == 204
