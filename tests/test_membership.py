"""Project membership and who may decide an item, on SQLite and PostgreSQL.

Annotators and reviewers see only the projects they are members of (a non-member gets the same
404 as for a missing row); an annotator decides only the item the queue handed them; nobody
labels or reviews the trusted sets (gold training, gold dev, test) through the tool.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from fastapi.testclient import TestClient

from tests.seeding import PASSWORD, add_members, page_login, seed_model_version
from tests.support import demo_rows, to_csv, upload


def _user(username: str, role: str) -> dict[str, str]:
    from app.core.auth import create_user, issue_token
    from app.core.db import session_scope
    from app.models import Role

    with session_scope() as session:
        user = create_user(session, username, PASSWORD, Role(role))
        return {"Authorization": f"Bearer {issue_token(session, user, 'tests')}"}


def _key() -> str:
    return uuid.uuid4().hex


def _upload(client, headers, project_id: int, rows, kind: str = "silver") -> None:
    response = upload(client, headers, project_id, to_csv(rows), "f.csv", kind)
    assert response.status_code == 201, response.text


def _items(client, headers, project_id: int, order: str = "id", limit: int = 500) -> list[dict]:
    url = f"/api/v1/projects/{project_id}/items?order={order}&limit={limit}"
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


@pytest.fixture
def team(client, admin_headers, project):
    """The project with 6 silver items, 2 gold dev, 2 test and 2 gold training items; annotators
    'ann' (member via the fixtures), 'bob' (member), 'eve' (not a member); reviewer 'rex'
    (member)."""
    pid = project["id"]
    _upload(client, admin_headers, pid, demo_rows(6))
    _upload(client, admin_headers, pid, demo_rows(2, offset=10, silver=False), "gold_dev")
    _upload(client, admin_headers, pid, demo_rows(2, offset=20, silver=False), "test")
    _upload(client, admin_headers, pid, demo_rows(2, offset=30, silver=False), "gold_train")
    people = {"ada": admin_headers}
    people |= {
        name: _user(name, role)
        for name, role in [
            ("ann", "annotator"),
            ("bob", "annotator"),
            ("eve", "annotator"),
            ("rex", "reviewer"),
        ]
    }
    add_members(pid, "ann", "bob", "rex")
    items = _items(client, admin_headers, pid)
    return {"project_id": pid, "people": people, "items": items}


def _label(client, headers, item_id: int, label: str = "fresh"):
    return client.post(
        f"/api/v1/items/{item_id}/label",
        headers=headers,
        json={"label": label, "idempotency_key": _key()},
    )


def _take(client, headers, project_id: int) -> dict:
    response = client.post(f"/api/v1/projects/{project_id}/queue/next", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# --- membership: API, page, CLI ---------------------------------------------------------------


def test_admin_adds_lists_and_removes_members_over_the_api(client, team):
    pid, ada = team["project_id"], team["people"]["ada"]
    url = f"/api/v1/projects/{pid}/members"
    eve = team["people"]["eve"]
    assert client.get(f"/api/v1/projects/{pid}", headers=eve).status_code == 404

    added = client.post(url, headers=ada, json={"username": "eve"})
    assert added.status_code == 200, added.text
    assert added.json()["username"] == "eve" and added.json()["role"] == "annotator"
    again = client.post(url, headers=ada, json={"user_id": added.json()["user_id"]})
    assert again.status_code == 200  # adding twice changes nothing
    names = [m["username"] for m in client.get(url, headers=ada).json()]
    assert names == ["ann", "bob", "eve", "rex"]
    assert client.get(f"/api/v1/projects/{pid}", headers=eve).status_code == 200

    missing = client.post(url, headers=ada, json={"username": "nobody"})
    assert missing.status_code == 422 and "username: user 'nobody' not found" in missing.text
    both = client.post(url, headers=ada, json={"username": "eve", "user_id": 1})
    assert both.status_code == 422

    gone = client.delete(f"{url}/{added.json()['user_id']}", headers=ada)
    assert gone.status_code == 204
    assert client.get(f"/api/v1/projects/{pid}", headers=eve).status_code == 404
    twice = client.delete(f"{url}/{added.json()['user_id']}", headers=ada)
    assert twice.status_code == 404 and "is not a member" in twice.text


def test_admin_adds_and_removes_members_on_the_project_page(client, team):
    pid = team["project_id"]
    csrf = page_login(client, "ada")
    page = client.get(f"/projects/{pid}")
    assert 'id="members"' in page.text and "<td>bob</td>" in page.text
    assert "<td>eve</td>" not in page.text

    added = client.post(
        f"/projects/{pid}/members",
        data={"username": "eve", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert added.status_code == 303
    assert "<td>eve</td>" in client.get(f"/projects/{pid}").text
    eve = TestClient(client.app)
    page_login(eve, "eve")
    assert eve.get(f"/projects/{pid}").status_code == 200

    unknown = client.post(
        f"/projects/{pid}/members", data={"username": "nobody", "csrf_token": csrf}
    )
    assert unknown.status_code == 422 and "user &#39;nobody&#39; not found" in unknown.text
    no_token = client.post(f"/projects/{pid}/members", data={"username": "eve"})
    assert no_token.status_code == 403

    eve_id = _user_id("eve")
    removed = client.post(
        f"/projects/{pid}/members/{eve_id}/remove",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert removed.status_code == 303
    assert "<td>eve</td>" not in client.get(f"/projects/{pid}").text
    assert eve.get(f"/projects/{pid}").status_code == 404  # the open session loses it at once


def _user_id(username: str) -> int:
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import User

    with session_scope() as session:
        return session.scalar(select(User.id).where(User.username == username))


def test_cli_adds_lists_and_removes_members(client, team, backend):
    def assay(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", "member", *args],
            env={**os.environ, **backend},
            capture_output=True,
            text=True,
            timeout=120,
        )

    pid = team["project_id"]
    added = assay("add", "Reviews", "eve")
    assert added.returncode == 0, added.stderr
    assert "eve added to project" in added.stdout
    assert "already a member" in assay("add", str(pid), "eve").stdout
    listed = assay("list", "Reviews")
    assert listed.stdout.split() == [
        "ann",
        "annotator",
        "bob",
        "annotator",
        "eve",
        "annotator",
        "rex",
        "reviewer",
    ]
    eve = team["people"]["eve"]
    assert client.get(f"/api/v1/projects/{pid}", headers=eve).status_code == 200
    assert assay("remove", "Reviews", "eve").returncode == 0
    assert client.get(f"/api/v1/projects/{pid}", headers=eve).status_code == 404
    unknown = assay("add", "Reviews", "nobody")
    assert unknown.returncode != 0 and "user 'nobody' not found" in unknown.stderr
    no_project = assay("add", "Nope", "eve")
    assert no_project.returncode != 0 and "no project 'Nope'" in no_project.stderr


# --- non-members see nothing ----------------------------------------------------------------


def test_a_non_member_gets_404_even_knowing_the_ids(client, team):
    pid, eve, ada = team["project_id"], team["people"]["eve"], team["people"]["ada"]
    item_id = team["items"][0]["id"]
    job = client.post(f"/api/v1/projects/{pid}/jobs", headers=ada, json={})
    assert job.status_code == 202
    missing = client.get("/api/v1/items/999999", headers=eve)
    hidden = client.get(f"/api/v1/items/{item_id}", headers=eve)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == f"item {item_id} not found"
    assert client.get(f"/api/v1/projects/{pid}", headers=eve).json()["detail"] == (
        f"project {pid} not found"
    )
    assert client.get(f"/api/v1/jobs/{job.json()['id']}", headers=eve).status_code == 404
    assert _label(client, eve, item_id).status_code == 404
    assert client.post(f"/api/v1/projects/{pid}/queue/next", headers=eve).status_code == 404
    assert client.get("/api/v1/projects", headers=eve).json() == []
    assert [p["id"] for p in client.get("/api/v1/projects", headers=team["people"]["bob"]).json()]

    browser = TestClient(client.app)
    page_login(browser, "eve")
    assert browser.get(f"/items/{item_id}").status_code == 404
    assert browser.get(f"/projects/{pid}/queue").status_code == 404
    assert browser.get(f"/jobs/{job.json()['id']}/progress").status_code == 404
    assert f"/projects/{pid}" not in browser.get("/").text


def test_removing_a_member_ends_their_access_and_gives_back_their_item(client, team):
    pid, bob, ada = team["project_id"], team["people"]["bob"], team["people"]["ada"]
    held = _take(client, bob, pid)
    assert client.get(f"/api/v1/items/{held['id']}", headers=bob).status_code == 200
    bob_id = _user_id("bob")
    assert client.delete(f"/api/v1/projects/{pid}/members/{bob_id}", headers=ada).status_code == 204
    assert client.get(f"/api/v1/items/{held['id']}", headers=bob).status_code == 404
    assert _label(client, bob, held["id"]).status_code == 404
    # the lease went back at once: another annotator gets that item now, not in lease_ttl_s
    assert _take(client, team["people"]["ann"], pid)["id"] == held["id"]


# --- who may decide an item -----------------------------------------------------------------


def test_an_annotator_decides_only_the_item_the_queue_handed_them(client, team):
    pid, ann, bob = team["project_id"], team["people"]["ann"], team["people"]["bob"]
    held = _take(client, ann, pid)
    never_served = next(
        i for i in team["items"] if i["dataset_kind"] == "silver" and i["id"] != held["id"]
    )
    refused = _label(client, ann, never_served["id"])
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        f"you do not hold item {never_served['id']}: take it from the queue"
    )
    taken = _label(client, bob, held["id"])  # ann holds it
    assert taken.status_code == 409 and "you do not hold" in taken.text
    skip = client.post(
        f"/api/v1/items/{held['id']}/skip",
        headers=bob,
        json={"mode": "pass", "idempotency_key": _key()},
    )
    assert skip.status_code == 409
    body = {"label": "fresh", "idempotency_key": _key()}
    mine = client.post(f"/api/v1/items/{held['id']}/label", headers=ann, json=body)
    assert mine.status_code == 200 and mine.json()["status"] == "reviewed"
    repeat = client.post(f"/api/v1/items/{held['id']}/label", headers=ann, json=body)
    assert repeat.status_code == 200  # the same key again: a no-op, not "you do not hold"
    reviewer = _label(client, team["people"]["rex"], never_served["id"])
    assert reviewer.status_code == 200  # reviewers decide any item of their projects


def test_an_annotator_cannot_decide_an_item_on_the_page_without_holding_it(client, team):
    pid = team["project_id"]
    held = _take(client, team["people"]["bob"], pid)
    csrf = page_login(client, "ann")
    response = client.post(
        f"/projects/{pid}/queue/{held['id']}",
        data={"action": "label", "label": "rotten", "idempotency_key": _key(), "csrf_token": csrf},
    )
    assert f"you do not hold item {held['id']}" in response.text
    events = client.get(f"/api/v1/items/{held['id']}", headers=team["people"]["ada"]).json()
    assert events["history"] == [] and events["status"] == "pending"


@pytest.mark.parametrize("kind", ["gold_dev", "test", "gold_train"])
def test_trusted_items_are_refused_to_everyone(client, team, kind):
    pid, people = team["project_id"], team["people"]
    item = next(i for i in team["items"] if i["dataset_kind"] == kind)
    where = {"gold_dev": "the gold dev set", "test": "the test set"}.get(
        kind, "the gold training set"
    )
    message = f"item {item['id']} is in {where}: change it by re-importing"
    before = client.get(f"/api/v1/items/{item['id']}", headers=people["ada"]).json()
    for who in ("ann", "rex", "ada"):
        label = _label(client, people[who], item["id"], "rotten")
        assert label.status_code == 403 and label.json()["detail"] == message, (who, label.text)
        skip = client.post(
            f"/api/v1/items/{item['id']}/skip",
            headers=people[who],
            json={"mode": "later", "idempotency_key": _key()},
        )
        assert skip.status_code == 403, (who, skip.text)
    for who in ("rex", "ada"):
        review = client.post(
            f"/api/v1/items/{item['id']}/review",
            headers=people[who],
            json={"label": "rotten", "idempotency_key": _key()},
        )
        assert review.status_code == 403 and review.json()["detail"] == message

    for who in ("ann", "rex", "ada"):
        browser = TestClient(client.app)
        csrf = page_login(browser, who)
        queue = browser.post(
            f"/projects/{pid}/queue/{item['id']}",
            data={"action": "label", "label": "rotten", "idempotency_key": _key()},
            headers={"X-CSRF-Token": csrf},
        )
        assert queue.status_code == 403 and message in queue.text, (who, queue.text)
        if who != "ann":
            review = browser.post(
                f"/projects/{pid}/review/{item['id']}",
                data={"label": "rotten", "idempotency_key": _key()},
                headers={"X-CSRF-Token": csrf},
            )
            assert review.status_code == 403 and message in review.text
    after = client.get(f"/api/v1/items/{item['id']}", headers=people["ada"]).json()
    assert after["history"] == before["history"] and after["current_label"] == item["current_label"]


def test_a_page_item_of_another_project_is_not_found(client, team):
    ada = team["people"]["ada"]
    other = client.post(
        "/api/v1/projects", headers=ada, json={"name": "Other", "labels": ["fresh", "rotten"]}
    ).json()
    add_members(other["id"], "ann")
    csrf = page_login(client, "ann")
    response = client.post(
        f"/projects/{other['id']}/queue/{team['items'][0]['id']}",
        data={"action": "pass", "idempotency_key": _key(), "csrf_token": csrf},
    )
    assert response.status_code == 404


# --- the suspicion order lists unscored items too --------------------------------------------


def _page_through(client, headers, project_id: int, limit: int) -> list[dict]:
    found, cursor = [], None
    while True:
        url = f"/api/v1/projects/{project_id}/items?order=suspicion&limit={limit}"
        page = client.get(url + (f"&cursor={cursor}" if cursor else ""), headers=headers).json()
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def test_suspicion_order_without_a_model_lists_every_item(client, team):
    pid, ann = team["project_id"], team["people"]["ann"]
    ids = [i["id"] for i in team["items"]]
    for limit in (1, 5, 500):
        assert [i["id"] for i in _page_through(client, ann, pid, limit)] == ids


def test_suspicion_order_lists_the_unscored_items_after_the_scored_ones(client, team):
    pid, ann = team["project_id"], team["people"]["ann"]
    silver = [i["id"] for i in team["items"] if i["dataset_kind"] == "silver"]
    ranked = [silver[3], silver[0], silver[4]]  # three silver items scored, three not
    seed_model_version(pid, ranked, ["fresh", "rotten"])
    unscored = [i["id"] for i in team["items"] if i["id"] not in ranked]
    for limit in (1, 2, 3, 4, 500):
        listed = _page_through(client, ann, pid, limit)
        assert [i["id"] for i in listed] == ranked + unscored, limit
        assert [i["suspicion_rank"] for i in listed[:3]] == [1, 2, 3]
        assert all(i["suspicion_rank"] is None for i in listed[3:])
    bad = client.get(f"/api/v1/projects/{pid}/items?order=suspicion&cursor=ux", headers=ann)
    assert bad.status_code == 422
    by_id = client.get(f"/api/v1/projects/{pid}/items?order=id&cursor=u3", headers=ann)
    assert by_id.status_code == 422
