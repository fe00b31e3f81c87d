"""Idempotency keys are each user's own and name one request (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from tests.conftest import _make_user
from tests.seeding import hand_over, page_login, silver_queue, take
from tests.support import wait_until

REUSED = "was already used for a different request"


@pytest.fixture
def people(client) -> dict[str, dict[str, str]]:
    return {
        name: {"Authorization": f"Bearer {_make_user(name, role)}"}
        for name, role in [("ann", "annotator"), ("bob", "annotator"), ("ada", "admin")]
    }


@pytest.fixture
def queue(client, people) -> int:
    return silver_queue(client, people["ada"], "Keys", "ann", "bob")


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


def test_an_admins_retry_on_the_item_it_decided_is_the_same_result(client, people, queue):
    """An admin's label decides a pending item; the retry finds it decided, and must still be
    answered as the same request (not taken for an override of the admin's own decision)."""
    key = uuid.uuid4().hex
    item = take(client, people["ann"], queue)
    first = label(client, people["ada"], item["id"], "rotten", key)
    assert first.status_code == 200 and first.json()["status"] == "reviewed", first.text
    again = label(client, people["ada"], item["id"], "rotten", key)
    assert again.status_code == 200, again.text
    assert again.json()["history"] == first.json()["history"]


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


def _send(client, headers, via: str, project_id: int, item_id: int, key: str) -> str | None:
    """ann's second request, on ``item_id`` with ``key``: the refusal it gets, else None. (The
    page answers a refusal with 200, the next item and the message.)"""
    if via == "page label":
        browser = TestClient(client.app)
        csrf = page_login(browser, "ann")
        form = {"csrf_token": csrf, "action": "label", "label": "rotten", "idempotency_key": key}
        response = browser.post(f"/projects/{project_id}/queue/{item_id}", data=form)
        assert response.status_code == 200, response.text
        return REUSED if REUSED in response.text else None
    if via == "api skip":
        response = skip(client, headers, item_id, "pass", key)
    else:
        response = label(client, headers, item_id, "rotten", key)
    if response.status_code == 200:
        return None
    assert response.status_code == 422, response.text
    return response.json()["detail"]


def _waiting_for_lock() -> bool:
    """PostgreSQL: another connection waits for a lock (the user's, or a unique key's, that the
    first request's uncommitted transaction holds)."""
    from app.core.db import get_engine

    with get_engine().connect() as connection:
        return bool(
            connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            )
        )


def _until_blocked(backend: str, second) -> None:
    """Let the second request run until it waits on the first's locks (PostgreSQL) or for the
    write lock (SQLite: it cannot be observed, so a pause); or until it answered (it did not
    wait: no lock stood in its way)."""
    if "ASSAY_DATABASE_URL" in backend:
        wait_until(lambda: second.done() or _waiting_for_lock(), 30, what="the second request")
    else:
        time.sleep(0.5)


@pytest.mark.parametrize("via", ["api label", "api skip", "page label"])
def test_same_key_racing_on_another_item_is_refused_not_answered(
    client, backend, people, queue, via
):
    """ann's first request (a label or skip of one item) is stored but not committed when her
    second one, with the same key, arrives for another item. The second waits on ann's lock
    (the user's row on PostgreSQL, the write lock on SQLite), then its key lookup sees the
    first: that is the same key with another payload, a 422 with nothing stored, not an answer
    as if applied."""
    from app.core.db import new_session
    from app.models import Assignment, Item, LabelEvent, User

    skips = via == "api skip"
    first_id, second_id, key, refusal = _race_one_key(
        client, backend, people, queue, "skip" if skips else "label", via
    )

    assert refusal is not None and REUSED in refusal
    with new_session() as check:
        ann_id = check.scalar(select(User.id).where(User.username == "ann"))
        events = check.scalars(select(LabelEvent).where(LabelEvent.idempotency_key == key)).all()
        standings = check.scalars(select(Assignment).where(Assignment.user_id == ann_id)).all()
        assert [e.item_id for e in events] == ([] if skips else [first_id])
        assert [(a.item_id, a.idempotency_key) for a in standings] == [
            (first_id, key if skips else None)
        ]
        assert check.get(Item, second_id).status == "pending"


def _first_keyed(session, project_id: int, item_id: int, action: str, key: str) -> None:
    """ann's first request, in ``session``, stored but not committed: a label or a skip."""
    from app.models import Item, Project, User
    from app.services.decisions import decide
    from app.services.queue import skip as skip_service

    ann = session.scalar(select(User).where(User.username == "ann"))
    item = session.get(Item, item_id)
    if action == "skip":
        assert skip_service(session, item, ann, "later", key)
    else:
        decide(session, session.get(Project, project_id), item, ann, "fresh", key)


def _race_one_key(
    client, backend: str, people, project_id: int, first_action: str, second_via: str
) -> tuple[int, int, str, str | None]:
    """ann's two requests with one new key on two items she holds: the first (``first_action``,
    a label or a skip) stored but not committed in a session of its own, the second
    (``second_via``) sent meanwhile and let run until it waits on the first's locks, then the
    first committed. Both race tests start here so that they race the same way. Returns the
    first item, the second item, the key and the second request's refusal (None: applied)."""
    from app.core.db import new_session

    key = uuid.uuid4().hex
    page = client.get(
        f"/api/v1/projects/{project_id}/items?order=id&limit=2", headers=people["ada"]
    )
    first_id, second_id = [row["id"] for row in page.json()["items"]]
    assert hand_over(first_id, "ann") and hand_over(second_id, "ann")
    with new_session() as first, ThreadPoolExecutor(1) as pool:
        _first_keyed(first, project_id, first_id, first_action, key)
        second = pool.submit(_send, client, people["ann"], second_via, project_id, second_id, key)
        _until_blocked(backend, second)
        first.commit()
        refusal = second.result(timeout=60)
    return first_id, second_id, key, refusal


@pytest.mark.parametrize("first_action", ["label", "skip"])
def test_a_label_and_a_skip_with_one_key_at_once_store_one(
    client, backend, people, queue, first_action
):
    """A label is stored in label_events and a skip in assignments: no unique key spans both,
    so only the lock on ann serializes them. Sent at the same moment with one key, one is
    applied and the other is a 422; exactly one row holds the key across both tables."""
    from app.core.db import new_session
    from app.models import Assignment, Item, LabelEvent

    second_via = "api label" if first_action == "skip" else "api skip"
    first_id, second_id, key, refusal = _race_one_key(
        client, backend, people, queue, first_action, second_via
    )

    assert refusal is not None and REUSED in refusal
    with new_session() as check:
        events = check.scalars(select(LabelEvent).where(LabelEvent.idempotency_key == key)).all()
        skips = check.scalars(select(Assignment).where(Assignment.idempotency_key == key)).all()
        assert [(e.item_id, "label") for e in events] + [(a.item_id, "skip") for a in skips] == [
            (first_id, first_action)
        ]
        assert check.get(Item, second_id).status == "pending"


def test_two_undos_with_one_key_at_once_answer_one_undo(client, backend, people, queue):
    """The same undo sent twice at the same moment (a double click): the second waits on ann's
    lock, then finds the first's event by its key and answers it, instead of a 409 claiming
    that ann acted on the item after labelling it. One undo event is stored."""
    from app.core.config import get_settings
    from app.core.db import new_session
    from app.models import LabelEvent, Project, User
    from app.services.decisions import undo

    key = uuid.uuid4().hex
    item = take(client, people["ann"], queue)
    assert label(client, people["ann"], item["id"], "fresh", uuid.uuid4().hex).status_code == 200

    def undo_over_api():
        return client.post(
            f"/api/v1/projects/{queue}/undo", headers=people["ann"], json={"idempotency_key": key}
        )

    with new_session() as first, ThreadPoolExecutor(1) as pool:
        ann = first.scalar(select(User).where(User.username == "ann"))
        project = first.get(Project, queue)
        event_id = undo(first, project, ann, key, get_settings().lease_ttl_s).event.id
        second = pool.submit(undo_over_api)
        _until_blocked(backend, second)
        first.commit()
        response = second.result(timeout=60)

    assert response.status_code == 200, response.text
    assert response.json()["id"] == item["id"]
    assert response.json()["history"][-1]["id"] == event_id
    with new_session() as check:
        undos = check.scalars(select(LabelEvent).where(LabelEvent.source == "undo")).all()
        assert [(e.id, e.idempotency_key) for e in undos] == [(event_id, key)]


def test_a_short_key_is_refused_in_characters(client, people, queue):
    """The key's length is checked as a string's (not as "items", pydantic's word for the
    length of a value checked after another validator)."""
    item = take(client, people["ann"], queue)
    response = label(client, people["ann"], item["id"], "fresh", "abc")
    assert response.status_code == 422
    issue = response.json()["detail"][0]
    assert issue["loc"][-1] == "idempotency_key"
    assert issue["msg"] == "String should have at least 8 characters"
