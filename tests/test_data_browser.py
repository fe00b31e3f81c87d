"""The data browser over the API: every filter against the same selection made in Python over
the whole item list, paging with filters, the filtered export, and "items like this" against
counts made by hand from the stored evidence; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest

from tests.seeding import add_members, hand_over, seed_model_version
from tests.support import upload_demo_project

LABELS = ["fresh", "rotten"]


@pytest.fixture
def browsed(client, admin_headers, annotator_headers):
    """12 silver and 4 test items, a model version over the silver ones (item i has rank i+1,
    suggested label fresh) with evidence, and ann's standing corrections of two items plus
    one undone correction."""
    project_id = upload_demo_project(client, admin_headers, "Browse", {"silver": 12, "test": 4})
    add_members(project_id, "ann")
    items = _all(client, admin_headers, project_id)
    silver = [i for i in items if i["dataset_kind"] == "silver"]
    # evidence: items 0..3 share training items 10 and 11; 4 shares one of them; 5..9 none
    ids = [i["id"] for i in silver]
    evidence = [(ids[t], ids[10], "supporter", 1, 0.5) for t in range(5)]
    evidence += [(ids[t], ids[11], "opposer", 1, -0.5) for t in range(4)]
    evidence += [(ids[t], ids[9], "supporter", 2, 0.1) for t in (0, 6)]
    seed_model_version(project_id, ids, LABELS, evidence=evidence)
    for item, undo_after in ((silver[0], False), (silver[1], True), (silver[2], False)):
        hand_over(item["id"], "ann")
        flipped = LABELS[1 - LABELS.index(item["current_label"])]
        key = uuid.uuid4().hex
        response = client.post(
            f"/api/v1/items/{item['id']}/label",
            headers=annotator_headers,
            json={"label": flipped, "idempotency_key": key},
        )
        assert response.status_code == 200, response.text
        if undo_after:
            response = client.post(
                f"/api/v1/projects/{project_id}/undo",
                headers=annotator_headers,
                json={"idempotency_key": uuid.uuid4().hex},
            )
            assert response.status_code == 200, response.text
    return project_id, silver


def _all(client, headers, project_id: int, **filters) -> list[dict]:
    """Every item the filters keep, following the cursor 3 items at a time."""
    found, cursor = [], None
    while True:
        params = {"order": "id", "limit": 3, **filters} | ({"cursor": cursor} if cursor else {})
        response = client.get(
            f"/api/v1/projects/{project_id}/items", headers=headers, params=params
        )
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def _ids(items: list[dict]) -> list[int]:
    return [i["id"] for i in items]


def test_each_filter_keeps_what_python_selects(client, admin_headers, browsed):
    project_id, silver = browsed
    everything = _all(client, admin_headers, project_id)
    assert len(everything) == 16
    word = silver[5]["text"].split()[2].upper()  # any case, inside the text
    cases = {
        "text": (word, lambda i: word.lower() in i["text"].lower()),
        "dataset_kind": ("test", lambda i: i["dataset_kind"] == "test"),
        "status": ("reviewed", lambda i: i["status"] == "reviewed"),
        "silver_label": ("rotten", lambda i: i["silver_label"] == "rotten"),
        "current_label": ("fresh", lambda i: i["current_label"] == "fresh"),
        "suggested_label": ("fresh", lambda i: i["suggested_label"] == "fresh"),
        "changed": (
            "true",
            lambda i: i["silver_label"] is not None and i["current_label"] != i["silver_label"],
        ),
        "rank_min": (4, lambda i: (i["suspicion_rank"] or 0) >= 4),
        "rank_max": (3, lambda i: i["suspicion_rank"] is not None and i["suspicion_rank"] <= 3),
        "annotator": ("ann", lambda i: i["id"] in (silver[0]["id"], silver[2]["id"])),
    }
    for name, (value, keep) in cases.items():
        expected = [i["id"] for i in everything if keep(i)]
        assert expected, f"the case for {name} selects nothing: it would test nothing"
        assert expected != _ids(everything), f"the case for {name} keeps everything"
        assert _ids(_all(client, admin_headers, project_id, **{name: value})) == expected, name
    # gold and test items have no silver label: neither changed from it nor still it
    for value in ("true", "false"):
        kinds = {i["dataset_kind"] for i in _all(client, admin_headers, project_id, changed=value)}
        assert kinds == {"silver"}, value
    # combined: the changed silver items among the three most suspicious
    combined = _all(client, admin_headers, project_id, changed="true", rank_max=3)
    assert _ids(combined) == [silver[0]["id"], silver[2]["id"]]
    # the undone correction is not ann's decision, and its item is not changed
    assert silver[1]["id"] not in _ids(_all(client, admin_headers, project_id, changed="true"))


def test_suspicion_order_pages_with_filters(client, admin_headers, browsed):
    project_id, silver = browsed
    found, cursor = [], None
    while True:
        params = {"limit": 2, "silver_label": silver[3]["silver_label"]}
        response = client.get(
            f"/api/v1/projects/{project_id}/items",
            headers=admin_headers,
            params=params | ({"cursor": cursor} if cursor else {}),
        )
        page = response.json()
        found += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    expected = [
        i
        for i in _all(client, admin_headers, project_id)
        if i["silver_label"] == params["silver_label"]
    ]
    ranked = sorted((i for i in expected if i["suspicion_rank"]), key=lambda i: i["suspicion_rank"])
    unranked = [i for i in expected if not i["suspicion_rank"]]
    assert _ids(found) == _ids(ranked + unranked)


def test_bad_filters_are_422_naming_the_parameter(client, admin_headers, browsed):
    project_id, _ = browsed
    for params in ({"status": "lost"}, {"rank_min": 0}, {"changed": "maybe"}, {"text": "x" * 201}):
        response = client.get(
            f"/api/v1/projects/{project_id}/items", headers=admin_headers, params=params
        )
        assert response.status_code == 422, params
        assert response.json()["detail"][0]["loc"][-1] == next(iter(params)), response.text


def test_export_of_the_filtered_set(client, admin_headers, browsed):
    project_id, _ = browsed
    filters = {"changed": "true", "dataset_kind": "silver"}
    expected = _ids(_all(client, admin_headers, project_id, **filters))
    jsonl = client.get(
        f"/api/v1/projects/{project_id}/export",
        headers=admin_headers,
        params={"format": "jsonl", **filters},
    )
    assert jsonl.status_code == 200, jsonl.text
    assert [json.loads(line)["id"] for line in jsonl.text.splitlines()] == expected
    text = client.get(
        f"/api/v1/projects/{project_id}/export",
        headers=admin_headers,
        params={"format": "csv", "annotator": "ann"},
    ).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in rows] == _ids(
        _all(client, admin_headers, project_id, annotator="ann")
    )
    assert {r["decided_by"] for r in rows} == {"ann"}


def test_items_like_this_ranks_by_shared_evidence(client, admin_headers, browsed):
    _, silver = browsed
    target = silver[0]
    response = client.get(f"/api/v1/items/{target['id']}/similar", headers=admin_headers)
    assert response.status_code == 200, response.text
    found = [(s["item"]["id"], s["shared_evidence"]) for s in response.json()]
    # by hand from the fixture's evidence: item 0 has training items 10, 11 and 9
    shared = {1: 2, 2: 2, 3: 2, 4: 1, 6: 1}
    expected = sorted(
        ((silver[i]["id"], n) for i, n in shared.items()), key=lambda p: (-p[1], p[0])
    )
    assert found == expected
    narrowed = client.get(
        f"/api/v1/items/{target['id']}/similar",
        headers=admin_headers,
        params={"changed": "true", "limit": 5},
    ).json()
    assert [s["item"]["id"] for s in narrowed] == [silver[2]["id"]]


def test_annotator_may_not_bulk_relabel(client, annotator_headers, browsed):
    project_id, silver = browsed
    response = client.post(
        f"/api/v1/projects/{project_id}/relabel",
        headers=annotator_headers,
        json={"item_ids": [silver[5]["id"]], "label": "fresh", "idempotency_key": uuid.uuid4().hex},
    )
    assert response.status_code == 403, response.text
