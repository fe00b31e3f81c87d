"""Exports on SQLite and PostgreSQL: every item once, with the provenance of a correction."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime

import pytest
from sqlalchemy import select

from tests.seeding import hand_over, page_login, seed_model_version
from tests.support import demo_rows, to_csv
from tests.test_api import upload

COLUMNS = ("id", "text", "label", "reference_label")


@pytest.fixture
def corrected(client, admin_headers, annotator_headers, project):
    """30 silver rows and 5 dev rows, a model version, and one silver label corrected by ann."""
    pid = project["id"]
    assert upload(client, admin_headers, pid, to_csv(demo_rows(30), COLUMNS)).status_code == 201
    dev = to_csv(demo_rows(5, offset=30, silver=False), COLUMNS)
    assert upload(client, admin_headers, pid, dev, kind="gold_dev").status_code == 201
    items = client.get(
        f"/api/v1/projects/{pid}/items?order=id&limit=100", headers=admin_headers
    ).json()["items"]
    silver_ids = [i["id"] for i in items if i["dataset_kind"] == "silver"]
    ranking = list(reversed(silver_ids))
    seed_model_version(pid, ranking, project["labels"])
    target = items[3]
    new = "rotten" if target["silver_label"] == "fresh" else "fresh"
    hand_over(target["id"], "ann")  # as the queue would: an annotator decides what they hold
    decision = client.post(
        f"/api/v1/items/{target['id']}/label",
        headers=annotator_headers,
        json={"label": new, "idempotency_key": uuid.uuid4().hex},
    )
    assert decision.status_code == 200, decision.text
    event = decision.json()["history"][-1]
    return {"items": items, "target": target, "new": new, "event": event, "ranking": ranking}


def _export(client, headers, project_id, fmt, **params):
    response = client.get(
        f"/api/v1/projects/{project_id}/export", headers=headers, params={"format": fmt, **params}
    )
    assert response.status_code == 200, response.text
    return response


def test_csv_export_holds_every_item_and_the_correction_with_provenance(
    client, admin_headers, project, corrected
):
    response = _export(client, admin_headers, project["id"], "csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["id"]) for r in rows] == [i["id"] for i in corrected["items"]]

    target = corrected["target"]
    row = next(r for r in rows if int(r["id"]) == target["id"])
    source = demo_rows(30)[3]
    assert row["text"] == source["text"] and row["external_id"] == source["id"]
    assert row["silver_label"] == target["silver_label"] == source["label"]
    assert row["reference_label"] == source["reference_label"]
    assert row["final_label"] == corrected["new"] and row["status"] == "reviewed"
    assert row["decided_by"] == "ann"
    assert datetime.fromisoformat(row["decided_at"]) == datetime.fromisoformat(
        corrected["event"]["created_at"]
    )
    rank = corrected["ranking"].index(target["id"]) + 1
    assert row["model_version"] == "1" and row["estimator"] == "exact_head"
    assert int(row["suspicion_rank"]) == rank
    assert float(row["score_suspicion"]) == -(rank - 1)
    assert row["score_dev_influence"] == ""

    untouched = [r for r in rows if int(r["id"]) != target["id"]]
    assert all(r["decided_by"] == "" and r["decided_at"] == "" for r in untouched)
    assert {r["status"] for r in untouched if r["dataset"] == "silver"} == {"pending"}
    dev = [r for r in rows if r["dataset"] == "gold_dev"]
    assert len(dev) == 5 and all(r["model_version"] == "" for r in dev)
    assert all(r["final_label"] == r["silver_label"] for r in untouched if r["dataset"] == "silver")


def test_jsonl_export_matches_the_csv(client, admin_headers, project, corrected):
    jsonl = _export(client, admin_headers, project["id"], "jsonl")
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in jsonl.text.splitlines()]
    rows = list(
        csv.DictReader(io.StringIO(_export(client, admin_headers, project["id"], "csv").text))
    )
    assert len(records) == len(rows) == 35
    for record, row in zip(records, rows, strict=True):
        votes = {v["annotator"]: v["label"] for v in record.pop("votes")}
        cast = {k.removeprefix("vote_"): v for k, v in row.items() if k.startswith("vote_")}
        assert cast == {"ann": votes.get("ann", "")}
        row = {k: v for k, v in row.items() if not k.startswith("vote_")}
        assert list(record) == list(row)
        assert {k: "" if v is None else str(v) for k, v in record.items()} == row
    target = next(r for r in records if r["id"] == corrected["target"]["id"])
    assert target["decided_by"] == "ann" and isinstance(target["suspicion_rank"], int)


def test_export_filters_by_kind_and_names_a_bad_parameter(
    client, admin_headers, annotator_headers, project, corrected
):
    dev = _export(client, admin_headers, project["id"], "jsonl", kind="gold_dev").text
    assert [json.loads(line)["dataset"] for line in dev.splitlines()] == ["gold_dev"] * 5
    bad = client.get(f"/api/v1/projects/{project['id']}/export?format=xlsx", headers=admin_headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "format"]
    bad_kind = client.get(
        f"/api/v1/projects/{project['id']}/export?kind=gold", headers=admin_headers
    )
    assert bad_kind.status_code == 422 and bad_kind.json()["detail"][0]["loc"][:2] == [
        "query",
        "kind",
    ]
    url = f"/api/v1/projects/{project['id']}/export"
    assert client.get(url, headers=annotator_headers).status_code == 403
    assert client.get(url).status_code == 401
    assert client.get("/api/v1/projects/999/export", headers=admin_headers).status_code == 404


def test_empty_project_exports_a_header(client, admin_headers, project):
    text = _export(client, admin_headers, project["id"], "csv").text
    assert text.strip().split(",")[:3] == ["id", "external_id", "dataset"]
    assert _export(client, admin_headers, project["id"], "jsonl").text == ""


def test_records_come_in_batches(client, project, corrected):
    from app.services.export import export_records

    batches = [len(b) for b in export_records(project["id"], None, batch=8)]
    assert batches == [8, 8, 8, 8, 3]


def test_the_project_page_offers_the_export_to_admins_only(
    client, admin_headers, annotator_headers, project, corrected
):
    url = f"/projects/{project['id']}/export?format=csv"
    anonymous = client.get(url, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    page_login(client, "ann")
    assert client.get(url).status_code == 403
    page_login(client, "ada")
    assert f'href="{url}"' in client.get(f"/projects/{project['id']}").text.replace("&amp;", "&")
    download = client.get(url)
    assert download.status_code == 200
    assert download.text == _export(client, admin_headers, project["id"], "csv").text


def test_only_a_final_decision_is_attributed(client, admin_headers, project, corrected):
    """A vote still waiting for other annotators (overlap > 1) or an undone decision leaves
    the item pending: the export names nobody as its decider; an undo never counts."""
    from app.core.db import session_scope
    from app.models import Item, LabelEvent, User

    waiting, target = corrected["items"][5], corrected["target"]
    with session_scope() as session:
        ann = session.scalar(select(User).where(User.username == "ann"))
        session.add(
            LabelEvent(item_id=waiting["id"], user_id=ann.id, source="annotator", new_label="fresh")
        )
        session.add(LabelEvent(item_id=target["id"], user_id=None, source="undo", new_label="x"))
        session.get(Item, target["id"]).status = "reviewed"
    rows = {
        int(r["id"]): r
        for r in csv.DictReader(
            io.StringIO(_export(client, admin_headers, project["id"], "csv").text)
        )
    }
    assert rows[waiting["id"]]["status"] == "pending" and rows[waiting["id"]]["decided_by"] == ""
    assert rows[target["id"]]["decided_by"] == "ann"


FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def test_formula_cells_are_neutralised_in_csv_and_exact_in_jsonl(
    client, admin_headers, annotator_headers
):
    """OWASP's CSV injection advice on every text column (text, ids, labels, note, user): a
    cell a spreadsheet would run gets a leading ', every text cell is quoted; JSONL is exact."""
    from tests.seeding import add_members

    labels = ['=HYPERLINK("http://x")', "@SUM(A1)"]
    created = client.post(
        "/api/v1/projects", headers=admin_headers, json={"name": "Formulas", "labels": labels}
    )
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    add_members(pid, "ann")
    rows = [
        {"id": payload, "text": payload, "label": labels[i % 2]}
        for i, payload in enumerate([*FORMULAS[:4], "a;=1+1"])
    ]
    uploaded = upload(client, admin_headers, pid, to_csv(rows))
    assert uploaded.status_code == 201, uploaded.text
    _store_as_is(pid, FORMULAS[4:], labels[0])  # a leading tab or CR, whatever the importer keeps
    items = client.get(f"/api/v1/projects/{pid}/items?order=id", headers=admin_headers).json()
    target = items["items"][0]
    hand_over(target["id"], "ann")
    csrf = page_login(client, "ann")
    note = "=cmd|' /C calc'!A0"  # the page strips a note's surrounding whitespace
    decided = client.post(
        f"/projects/{pid}/queue/{target['id']}",
        data={
            "action": "label",
            "label": labels[1],
            "note": note,
            "idempotency_key": uuid.uuid4().hex,
            "csrf_token": csrf,
        },
    )
    assert decided.status_code == 200, decided.text

    records = [
        json.loads(line) for line in _export(client, admin_headers, pid, "jsonl").text.splitlines()
    ]
    stored = [*rows, *({"id": p, "text": p, "label": labels[0]} for p in FORMULAS[4:])]
    assert [(r["external_id"], r["text"], r["silver_label"]) for r in records] == [
        (r["id"], r["text"], r["label"]) for r in stored
    ]
    assert (records[0]["final_label"], records[0]["note"]) == (labels[1], note)
    assert records[0]["decided_by"] == "ann"

    raw = _export(client, admin_headers, pid, "csv").text
    cells = list(csv.DictReader(io.StringIO(raw, newline="")))
    assert len(cells) == len(records)
    for record, row in zip(records, cells, strict=True):
        record["vote_ann"] = next((v["label"] for v in record.pop("votes")), None)
        for column, value in record.items():
            if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
                assert row[column] == "'" + value, (column, value)
            else:
                assert row[column] == ("" if value is None else str(value)), (column, value)
    assert cells[0]["note"] == "'" + note and cells[0]["final_label"] == "'@SUM(A1)"
    assert cells[0]["vote_ann"] == "'@SUM(A1)" and cells[1]["vote_ann"] == ""
    assert '"a;=1+1"' in raw  # quoted: a ;-separated spreadsheet keeps it one cell


def _store_as_is(project_id: int, payloads: list[str], label: str) -> None:
    """Items whose id and text are exactly ``payloads``, added to the project's dataset."""
    from app.core.db import session_scope
    from app.models import Dataset, Item

    with session_scope() as session:
        dataset = session.scalar(select(Dataset).where(Dataset.project_id == project_id))
        for payload in payloads:
            session.add(
                Item(
                    project_id=project_id,
                    dataset_id=dataset.id,
                    dataset_kind=dataset.kind,
                    external_id=payload,
                    text=payload,
                    silver_label=label,
                    current_label=label,
                )
            )


def test_each_annotators_vote_is_exported(client, admin_headers, annotator_headers, project):
    """Overlap 2: ann and bob vote on one item (ann with a note), bob's vote on another is
    undone. JSONL lists the votes that stand with who and when; CSV has a column per voter."""
    from app.core.auth import create_user, issue_token
    from app.core.db import session_scope
    from app.models import Role
    from tests.seeding import add_members

    with session_scope() as session:
        user = create_user(session, "bob", "correct horse battery", Role.annotator)
        bob = {"Authorization": f"Bearer {issue_token(session, user, 't')}"}
    add_members(project["id"], "bob")
    pid = project["id"]
    assert upload(client, admin_headers, pid, to_csv(demo_rows(4), COLUMNS)).status_code == 201
    assert (
        client.patch(
            f"/api/v1/projects/{pid}", headers=admin_headers, json={"overlap": 2}
        ).status_code
        == 200
    )
    first, second = client.get(
        f"/api/v1/projects/{pid}/items?order=id", headers=admin_headers
    ).json()["items"][:2]
    at = {}
    for who, headers, item, label, note in (
        ("ann", annotator_headers, first, "rotten", "=looks off"),
        ("bob", bob, first, "fresh", None),
        ("bob", bob, second, "rotten", None),
    ):
        hand_over(item["id"], who)
        body = {"label": label, "idempotency_key": uuid.uuid4().hex, "reason": note}
        response = client.post(f"/api/v1/items/{item['id']}/label", headers=headers, json=body)
        assert response.status_code == 200, response.text
        at[(who, item["id"])] = response.json()["history"][-1]["created_at"]
    undone = client.post(
        f"/api/v1/projects/{pid}/undo", headers=bob, json={"idempotency_key": uuid.uuid4().hex}
    )
    assert undone.status_code == 200, undone.text

    records = {
        r["id"]: r
        for r in map(json.loads, _export(client, admin_headers, pid, "jsonl").text.splitlines())
    }
    votes = records[first["id"]]["votes"]
    assert [(v["annotator"], v["label"]) for v in votes] == [("ann", "rotten"), ("bob", "fresh")]
    for vote in votes:
        stamp = datetime.fromisoformat(vote["at"])
        assert (
            abs(
                (
                    stamp - datetime.fromisoformat(at[(vote["annotator"], first["id"])])
                ).total_seconds()
            )
            < 5
        )
    assert records[second["id"]]["votes"] == [], "an undone vote is no vote"
    assert records[first["id"]]["status"] == "disputed", "a tie goes to review"

    rows = {
        int(r["id"]): r
        for r in csv.DictReader(io.StringIO(_export(client, admin_headers, pid, "csv").text))
    }
    assert [c for c in next(iter(rows.values())) if c.startswith("vote_")] == [
        "vote_ann",
        "vote_bob",
    ]
    assert (rows[first["id"]]["vote_ann"], rows[first["id"]]["vote_bob"]) == ("rotten", "fresh")
    assert (rows[second["id"]]["vote_ann"], rows[second["id"]]["vote_bob"]) == ("", "")
