"""A survival project's shared pages, on SQLite and PostgreSQL: its labels are column names,
not annotations, so the items page offers no label filters or bulk relabel, and the review
page offers the follow-ups the annotators voted for, not the column names."""

from __future__ import annotations

import re
import uuid

from tests.conftest import _make_user
from tests.seeding import add_members, page_login, take
from tests.support import upload

RECORDS = b"id,time,cens,age\na,100,1,50\nb,200,0,61\nc,300,1,40\n"


def test_review_offers_the_voted_follow_ups_and_items_no_label_choices(client):
    people = {
        name: {"Authorization": f"Bearer {_make_user(name, role)}"}
        for name, role in [("ann", "annotator"), ("bob", "annotator"), ("ada", "admin")]
    }
    project = client.post(
        "/api/v1/projects",
        headers=people["ada"],
        json={"name": "follow-up", "labels": ["time", "cens"], "task_kind": "survival"},
    ).json()
    pid = project["id"]
    assert upload(client, people["ada"], pid, RECORDS).status_code == 201
    add_members(pid, "ann", "bob")
    client.patch(f"/api/v1/projects/{pid}", headers=people["ada"], json={"overlap": 2})
    item = take(client, people["ann"], pid)
    for name, value in (("ann", "150 1"), ("bob", "150.0 0")):
        assert take(client, people[name], pid)["id"] == item["id"]
        voted = client.post(
            f"/api/v1/items/{item['id']}/label",
            headers=people[name],
            json={"label": value, "idempotency_key": uuid.uuid4().hex},
        )
        assert voted.status_code == 200, voted.text
    assert voted.json()["status"] == "disputed"

    page_login(client, "ada", "correct horse battery")
    review = client.get(f"/projects/{pid}/review")
    assert review.status_code == 200
    offered = dict(
        re.findall(r'name="label" value="([^"]*)" class="secondary override">([^<]*)<', review.text)
    )
    assert offered == {"150 1": "event at 150", "150 0": "censored at 150"}
    items = client.get(f"/projects/{pid}/items")
    assert items.status_code == 200
    assert 'name="silver_label"' not in items.text and 'id="bulk-controls"' not in items.text
