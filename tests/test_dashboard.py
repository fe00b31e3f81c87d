"""The dashboard's numbers against an independent count in SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update

from tests.seeding import hand_over, page_login, seed_model_version
from tests.support import demo_rows, to_csv
from tests.test_api import upload

WITH_REFERENCE = ("id", "text", "label", "reference_label")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# ann: four decisions 0 s, 60 s, 120 s and 1 h apart; the last gap is a break (idle gap 300 s)
ANN_OFFSETS = (0, 60, 120, 3720)
ADA_OFFSETS = (0, 30, 90)


def _sql(query: str, **params):
    from app.core.db import session_scope

    with session_scope() as session:
        return session.execute(text(query), params).all()


def _decide(client, headers, item, label) -> int:
    hand_over(item["id"], "ann")  # as the queue would: annotator 'ann' decides what they hold
    response = client.post(
        f"/api/v1/items/{item['id']}/label",
        headers=headers,
        json={"label": label, "idempotency_key": uuid.uuid4().hex},
    )
    assert response.status_code == 200, response.text
    return response.json()["history"][-1]["id"]


def _set_times(event_ids: list[int], offsets: tuple[int, ...]) -> None:
    from app.core.db import session_scope
    from app.models import LabelEvent

    with session_scope() as session:
        for event_id, offset in zip(event_ids, offsets, strict=True):
            session.execute(
                update(LabelEvent)
                .where(LabelEvent.id == event_id)
                .values(created_at=T0 + timedelta(seconds=offset))
            )


@pytest.fixture
def seeded(client, admin_headers, annotator_headers, project):
    """40 silver items with reference labels and 5 without; two model versions; seven
    decisions by two annotators, in the queue's order, some of them wrong."""
    pid = project["id"]
    rows = demo_rows(40)
    assert upload(client, admin_headers, pid, to_csv(rows, WITH_REFERENCE)).status_code == 201
    extra = to_csv(demo_rows(5, offset=40))
    assert upload(client, admin_headers, pid, extra, kind="extension").status_code == 201
    items = client.get(
        f"/api/v1/projects/{pid}/items?order=id&limit=100", headers=admin_headers
    ).json()["items"]
    reference = {r["id"]: r["reference_label"] for r in rows}
    silver_wrong = {r["id"] for r in rows if r["label"] != r["reference_label"]}
    # the most suspicious first: wrong silver labels (by the reference) before the others
    ranked = sorted(items, key=lambda i: (i["external_id"] not in silver_wrong, i["id"]))
    ranking = [i["id"] for i in ranked]
    f1 = {"dev_macro_f1": 0.61, "test_macro_f1": 0.58}
    seed_model_version(pid, ranking, project["labels"], f1)
    ann_events, ada_events = [], []
    for n, item in enumerate(ranked[:7]):
        truth = reference[item["external_id"]]
        other = "rotten" if truth == "fresh" else "fresh"
        label = other if n in (2, 5) else truth  # two decisions disagree with the reference
        if n % 2 == 0 and len(ann_events) < 4:
            ann_events.append(_decide(client, annotator_headers, item, label))
        else:
            ada_events.append(_decide(client, admin_headers, item, label))
    _set_times(ann_events, ANN_OFFSETS)
    _set_times(ada_events, ADA_OFFSETS)
    seed_model_version(
        pid,
        ranking,
        project["labels"],
        {"dev_macro_f1": 0.66, "test_macro_f1": 0.63},
        watermark=max(ann_events + ada_events),
    )
    return {"ranking": ranking, "pid": pid}


def _cell(html: str, row_attr: str, key: str, cls: str) -> str:
    row = re.search(rf'<tr {row_attr}="{re.escape(key)}".*?</tr>', html, re.S)
    assert row, f"no row {row_attr}={key}"
    return re.search(rf'<td class="{cls}"[^>]*>([^<]*)<', row[0])[1].strip()


def test_dashboard_numbers_match_the_database(client, seeded, admin_headers):
    pid = seeded["pid"]
    page_login(client, "ada")
    html = client.get(f"/projects/{pid}/dashboard").text

    # detection: reviewed items with a reference, in order of their first decision
    reviewed = _sql(
        "SELECT i.silver_label <> i.reference_label FROM items i"
        " JOIN (SELECT item_id, MIN(id) AS first FROM label_events GROUP BY item_id) e"
        " ON e.item_id = i.id WHERE i.project_id = :p AND i.reference_label IS NOT NULL"
        " AND i.status = 'reviewed' ORDER BY e.first",
        p=pid,
    )
    known, wrong = _sql(
        "SELECT COUNT(*), SUM(CASE WHEN silver_label <> reference_label THEN 1 ELSE 0 END)"
        " FROM items WHERE project_id = :p AND reference_label IS NOT NULL",
        p=pid,
    )[0]
    found = sum(bool(r[0]) for r in reviewed)
    detection = re.search(r'<p id="detection" ([^>]*)>', html)[1]
    assert f'data-reviewed="{len(reviewed)}"' in detection and len(reviewed) == 7
    assert f'data-found="{found}"' in detection and found > 0
    assert f'data-known="{known}"' in detection and known == 40
    assert f'data-wrong="{wrong}"' in detection

    # labels before (silver) and now
    silver = dict(_sql("SELECT silver_label, COUNT(*) FROM items GROUP BY silver_label"))
    now = dict(_sql("SELECT current_label, COUNT(*) FROM items GROUP BY current_label"))
    for label in ("fresh", "rotten"):
        assert int(_cell(html, "data-label", label, "silver")) == silver[label]
        assert int(_cell(html, "data-label", label, "final")) == now[label]
    assert silver != now  # the corrections moved labels

    # annotators: decisions, accuracy on the reference, throughput over active time
    per_user = _sql(
        "SELECT u.username, COUNT(*),"
        " SUM(CASE WHEN e.new_label = i.reference_label THEN 1 ELSE 0 END)"
        " FROM label_events e JOIN users u ON u.id = e.user_id JOIN items i ON i.id = e.item_id"
        " GROUP BY u.username",
    )
    for username, decisions, correct in per_user:
        assert int(_cell(html, "data-username", username, "decisions")) == decisions
        accuracy = _cell(html, "data-username", username, "accuracy")
        assert accuracy.startswith(f"{100 * correct / decisions:.1f}% of {decisions}")
    assert {u for u, *_ in per_user} == {"ann", "ada"}
    # ann: 3 intervals in 60 + 60 + 300 (capped) s; ada: 2 intervals in 30 + 60 s
    assert _cell(html, "data-username", "ann", "per-hour") == f"{3 / (420 / 3600):.1f}"
    assert _cell(html, "data-username", "ada", "per-hour") == f"{2 / (90 / 3600):.1f}"

    # F1 by version, and the decisions each version learnt from
    assert _cell(html, "data-version", "1", "dev") == "0.610"
    assert _cell(html, "data-version", "2", "test") == "0.630"
    assert _cell(html, "data-version", "1", "decisions") == "0"
    assert _cell(html, "data-version", "2", "decisions") == "7"

    # datasets and their sizes
    sizes = _sql("SELECT SUM(row_count) FROM datasets WHERE project_id = :p", p=pid)[0][0]
    assert re.search(rf'<tfoot>.*<th class="rows">{sizes}</th>', html, re.S) and sizes == 45


def test_detection_curve_follows_the_review_order(client, seeded):
    from app.core.db import session_scope
    from app.models import Project
    from app.services.dashboard import detection

    with session_scope() as session:
        found = detection(session, session.get(Project, seeded["pid"]))
    # the seeded ranking puts wrong silver labels first, and review followed it
    wrong_first = found.points[1:]
    assert [y for _, y in wrong_first] == list(range(1, 8))[: len(wrong_first)]
    assert found.base_rate == found.wrong / found.known < 1


def test_dashboard_draws_svg_and_refreshes_itself(client, seeded):
    page_login(client, "ada")
    html = client.get(f"/projects/{seeded['pid']}/dashboard").text
    for chart in ("detection-chart", "f1-chart", "labels-chart"):
        assert re.search(rf'<figure class="chart" id="{chart}">\s*<svg', html), chart
    assert html.count('<path class="series s0') >= 2
    assert "<script" not in html.split("<main>")[1]  # plots need no JavaScript
    assert 'hx-trigger="every 30s"' in html
    fragment = client.get(  # as the page's htmx polling asks; opened directly it redirects
        f"/projects/{seeded['pid']}/dashboard/stats", headers={"HX-Request": "true"}
    )
    assert fragment.status_code == 200
    assert 'id="dashboard-stats"' in fragment.text and "<html" not in fragment.text


def test_dashboard_is_for_admins(client, project, annotator_headers):
    url = f"/projects/{project['id']}/dashboard"
    anonymous = client.get(url, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    page_login(client, "ann")
    assert client.get(url).status_code == 403
    assert client.get(url + "/stats").status_code == 403


def test_empty_project_dashboard(client, project, admin_headers):
    page_login(client, "ada")
    html = client.get(f"/projects/{project['id']}/dashboard").text
    assert 'data-known="0"' in html and "No model yet" in html and "No decisions yet" in html
