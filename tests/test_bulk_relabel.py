"""Bulk relabel over the API: a dry run writes nothing; the change sets every item with one
label event each, counts as corrections, and is undone as a group back to exactly the earlier
labels and statuses; a repeat, a stale preview, a trusted item, a later review, another
reviewer: each gets its own answer and nothing half-written. SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests.conftest import _make_user
from tests.seeding import add_members, hand_over, seed_model_version
from tests.support import database_rows, upload_demo_project

LABELS = ["fresh", "rotten"]


def _headers(username: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_make_user(username, role)}"}


@pytest.fixture
def setup(client, admin_headers, annotator_headers):
    """8 silver and 2 test items with a model; ann corrected item 0; reviewers rex and rae."""
    project_id = upload_demo_project(client, admin_headers, "Bulk", {"silver": 8, "test": 2})
    reviewers = {"rex": _headers("rex", "reviewer"), "rae": _headers("rae", "reviewer")}
    add_members(project_id, "ann", "rex", "rae")
    items = client.get(
        f"/api/v1/projects/{project_id}/items", headers=admin_headers, params={"order": "id"}
    ).json()["items"]
    seed_model_version(project_id, [i["id"] for i in items[:8]], LABELS)
    first = items[0]
    hand_over(first["id"], "ann")
    flipped = LABELS[1 - LABELS.index(first["silver_label"])]
    response = client.post(
        f"/api/v1/items/{first['id']}/label",
        headers=annotator_headers,
        json={"label": flipped, "idempotency_key": uuid.uuid4().hex},
    )
    assert response.status_code == 200, response.text
    return project_id, items, reviewers


def _state(client, headers, project_id: int) -> dict[int, tuple]:
    items = client.get(
        f"/api/v1/projects/{project_id}/items",
        headers=headers,
        params={"order": "id", "limit": 100},
    ).json()["items"]
    return {i["id"]: (i["current_label"], i["gold_label"], i["status"]) for i in items}


def _corrections(project_id: int) -> int:
    from app.core.db import session_scope
    from app.models import Item, LabelEvent
    from app.services.decision_counts import is_correction

    with session_scope() as session:
        return session.scalar(
            select(func.count())
            .select_from(LabelEvent)
            .join(Item, Item.id == LabelEvent.item_id)
            .where(Item.project_id == project_id, is_correction())
        )


def _relabel(client, headers, project_id, ids, label, key=None, **extra):
    body = {"item_ids": ids, "label": label, "idempotency_key": key or uuid.uuid4().hex, **extra}
    return client.post(f"/api/v1/projects/{project_id}/relabel", headers=headers, json=body)


def _undo(client, headers, project_id, group_id):
    return client.post(f"/api/v1/projects/{project_id}/relabel/{group_id}/undo", headers=headers)


def test_preview_apply_undo(client, admin_headers, setup):
    project_id, items, reviewers = setup
    rex = reviewers["rex"]
    chosen = [items[0]["id"], items[1]["id"], items[2]["id"]]
    before = _state(client, admin_headers, project_id)
    assert _corrections(project_id) == 1
    label = "rotten"
    rows = database_rows()
    dry = _relabel(client, rex, project_id, chosen, label, dry_run=True)
    assert dry.status_code == 200, dry.text
    assert dry.json()["group_id"] is None
    assert database_rows() == rows, "a dry run wrote something"
    preview = dry.json()["items"]
    assert [r["item_id"] for r in preview] == chosen
    assert all(r["changes"] and r["refused"] is None for r in preview)
    expected = [
        {"item_id": r["item_id"], "current_label": r["current_label"], "status": r["status"]}
        for r in preview
    ]
    key = uuid.uuid4().hex
    applied = _relabel(client, rex, project_id, chosen, label, key, expected=expected)
    assert applied.status_code == 200, applied.text
    group = applied.json()
    assert group["changed"] == 3
    assert [(r["item_id"], r["changes"]) for r in group["items"]] == [(i, True) for i in chosen]
    after = _state(client, admin_headers, project_id)
    for item_id in chosen:
        assert after[item_id] == (label, label, "reviewed")
    assert {k: v for k, v in after.items() if k not in chosen} == {
        k: v for k, v in before.items() if k not in chosen
    }
    changed_labels = sum(before[i][0] != label for i in chosen)
    assert _corrections(project_id) == 1 + changed_labels
    history = client.get(f"/api/v1/items/{chosen[1]}", headers=admin_headers).json()["history"]
    assert history[-1]["source"] == "bulk"
    # the same request again: the same change, nothing new
    rows = database_rows()
    again = _relabel(client, rex, project_id, chosen, label, key, expected=expected)
    assert again.status_code == 200 and again.json()["group_id"] == group["group_id"]
    assert database_rows() == rows
    # the group undo restores every item exactly; the undone change corrects nothing
    undone = _undo(client, rex, project_id, group["group_id"])
    assert undone.status_code == 200, undone.text
    assert undone.json()["undone_at"] is not None
    assert {r["item_id"]: (r["current_label"], r["status"]) for r in undone.json()["items"]} == {
        i: (before[i][0], before[i][2]) for i in chosen
    }
    restored = _state(client, admin_headers, project_id)
    assert restored == before
    assert _corrections(project_id) == 1
    rows = database_rows()
    assert _undo(client, rex, project_id, group["group_id"]).status_code == 200
    assert database_rows() == rows, "a second undo changed something"


def test_refusals_write_nothing(client, admin_headers, annotator_headers, setup):
    project_id, items, reviewers = setup
    rex, rae = reviewers["rex"], reviewers["rae"]
    silver = [items[3]["id"], items[4]["id"]]
    test_item = next(i for i in items if i["dataset_kind"] == "test")
    rows = database_rows()
    trusted = _relabel(client, rex, project_id, [*silver, test_item["id"]], "fresh")
    assert trusted.status_code == 403 and test_item["external_id"] in trusted.json()["detail"]
    stale = _relabel(
        client,
        rex,
        project_id,
        silver,
        "fresh",
        expected=[
            {"item_id": silver[0], "current_label": items[3]["current_label"], "status": "pending"},
            {"item_id": silver[1], "current_label": "changed meanwhile", "status": "pending"},
        ],
    )
    assert stale.status_code == 409 and items[4]["external_id"] in stale.json()["detail"]
    unknown = _relabel(client, rex, project_id, [*silver, 10**9], "fresh")
    assert unknown.status_code == 422 and str(10**9) in unknown.json()["detail"]
    bad_label = _relabel(client, rex, project_id, silver, "mouldy")
    assert bad_label.status_code == 422
    annotator = _relabel(client, annotator_headers, project_id, silver, "fresh")
    assert annotator.status_code == 403
    assert database_rows() == rows
    # a change undone only by its author or an admin, and not after a later review
    group = _relabel(client, rex, project_id, silver, "fresh").json()
    assert _undo(client, rae, project_id, group["group_id"]).status_code == 403
    review = client.post(
        f"/api/v1/items/{silver[1]}/review",
        headers=rae,
        json={"label": "rotten", "idempotency_key": uuid.uuid4().hex},
    )
    assert review.status_code == 200, review.text
    rows = database_rows()
    late = _undo(client, rex, project_id, group["group_id"])
    assert late.status_code == 409 and items[4]["external_id"] in late.json()["detail"]
    assert database_rows() == rows
    # an admin undoes another's change once nothing came after it
    other = _relabel(client, rex, project_id, [items[5]["id"]], "rotten").json()
    assert _undo(client, admin_headers, project_id, other["group_id"]).status_code == 200


def test_queue_undo_cannot_reach_past_a_bulk_change(client, annotator_headers, setup):
    """ann's vote on item 0 was overridden by a bulk change: ann's undo must not revert it."""
    project_id, items, reviewers = setup
    label = items[0]["silver_label"]
    assert (
        _relabel(client, reviewers["rex"], project_id, [items[0]["id"]], label).status_code == 200
    )
    response = client.post(
        f"/api/v1/projects/{project_id}/undo",
        headers=annotator_headers,
        json={"idempotency_key": uuid.uuid4().hex},
    )
    assert response.status_code == 409, response.text
    assert "rex" in response.json()["detail"]
