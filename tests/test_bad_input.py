"""Bad input through the real API and pages, on SQLite and PostgreSQL: each is a 4xx that names
the field, never a 500, and stores nothing (rows counted before and after). Bad upload files
are in tests/test_bad_uploads.py."""

from __future__ import annotations

import pytest

from tests.seeding import page_login
from tests.support import demo_rows, to_csv
from tests.test_api import count_rows, upload

LABELS = ["fresh", "rotten"]
DEEP = "[" * 100_000 + "]" * 100_000  # past Python's recursion limit: RecursionError before


def _raw(client, headers, path: str, body: str):
    return client.post(
        path, headers={**headers, "Content-Type": "application/json"}, content=body.encode()
    )


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ('{"name": "a\\ud800b", "labels": ["fresh", "rotten"]}', ["body", "name"], "surrogate"),
        ('{"name": "P", "labels": ["fresh", "\\udfff"]}', ["body", "labels", 1], "surrogate"),
        ('{"name": "P", "labels": ["fresh", "rotten"], "x": ' + DEEP + "}", ["body"], "deeper"),
        ('{"name": "P", "labels": ' + "[" * 40 + "]" * 40 + "}", ["body", "labels"], "deeper"),
        ('{"name": "P", "name": "Q", "labels": ["fresh", "rotten"]}', ["body"], "twice"),
        ('{"name": 5, "labels": ["fresh", "rotten"]}', ["body", "name"], "string"),
        ('{"name": "P", "labels": "fresh,rotten"}', ["body", "labels"], "list"),
        ('{"name": "   ", "labels": ["fresh", "rotten"]}', ["body", "name"], "only spaces"),
        ('{"name": "P", "labels": ["fresh", "fresh"]}', ["body", "labels"], "distinct"),
    ],
    ids=[
        "lone-surrogate-in-name",
        "lone-surrogate-in-a-label",
        "nested-past-the-recursion-limit",
        "nested-over-the-depth-limit",
        "duplicate-key",
        "name-not-a-string",
        "labels-not-a-list",
        "blank-name",
        "duplicate-labels",
    ],
)
def test_bad_json_body_is_422_naming_the_field(client, admin_headers, body, loc, words):
    from app.models import Project

    response = _raw(client, admin_headers, "/api/v1/projects", body)
    assert response.status_code == 422, response.text[:300]
    issue = response.json()["detail"][0]
    assert issue["loc"][: len(loc)] == loc and words in issue["msg"], issue
    assert count_rows(Project) == 0


def test_lone_surrogate_in_another_route_is_refused(client, admin_headers, project):
    """The check is on every JSON body, not per schema: a label decision too."""
    from app.models import LabelEvent

    body = '{"label": "\\ud800", "idempotency_key": "abcdefgh12"}'
    response = _raw(client, admin_headers, "/api/v1/items/1/label", body)
    assert response.status_code == 422 and "surrogate" in response.text
    assert count_rows(LabelEvent) == 0


def test_too_many_labels_is_422(client, admin_headers):
    from app.config import get_settings
    from app.models import Project

    labels = [f"l{i}" for i in range(get_settings().max_labels + 1)]
    response = client.post(
        "/api/v1/projects", headers=admin_headers, json={"name": "P", "labels": labels}
    )
    assert response.status_code == 422 and "ASSAY_MAX_LABELS" in response.text
    assert len(response.content) < 1024
    assert count_rows(Project) == 0


def test_duplicate_project_name_is_409_on_api_and_page(client, admin_headers):
    from app.models import Project

    body = {"name": "Reviews", "labels": LABELS}
    assert client.post("/api/v1/projects", headers=admin_headers, json=body).status_code == 201
    again = client.post(
        "/api/v1/projects", headers=admin_headers, json={**body, "name": " Reviews "}
    )
    assert again.status_code == 409, again.text
    assert again.json() == {"detail": "name: a project named 'Reviews' already exists"}
    token = page_login(client, "ada")
    page = client.post(
        "/projects",
        data={"name": "Reviews", "labels": "fresh, rotten", "csrf_token": token},
        follow_redirects=False,
    )
    assert page.status_code == 409 and "already exists" in page.text
    blank = client.post(
        "/projects",
        data={"name": "  ", "labels": "fresh, rotten", "csrf_token": token},
        follow_redirects=False,
    )
    assert blank.status_code == 422
    assert count_rows(Project) == 1


def test_upload_keeps_text_exact_and_strips_only_keys(client, admin_headers, project):
    """Leading spaces or a tab in a text can be meaning (code, poetry): kept exact. Around a
    label or id they are a typing slip: stripped, so ' fresh' is the label 'fresh'."""
    data = b'id,text,label\n" 7 ","    indented code",  fresh\n8,"\tx = 1 ",rotten\n'
    assert upload(client, admin_headers, project["id"], data).status_code == 201
    items = client.get(
        f"/api/v1/projects/{project['id']}/items?order=id", headers=admin_headers
    ).json()["items"]
    assert [(i["external_id"], i["text"], i["silver_label"]) for i in items] == [
        ("7", "    indented code", "fresh"),
        ("8", "\tx = 1 ", "rotten"),
    ]


def test_queue_busy_is_503_with_retry_after(backend, client, admin_headers, project):
    """SQLite's claim loses every race (a trigger stands in for annotators who always take
    the item first): a 503 to retry, not a 500. PostgreSQL's one-statement claim cannot
    lose that way (it skips locked rows), so this is SQLite only."""
    from tests.conftest import _make_user
    from tests.seeding import add_to_every_project

    if backend.get("ASSAY_DATABASE_URL"):
        pytest.skip("PostgreSQL claims in one statement; QueueBusy is SQLite's")
    from sqlalchemy import text

    from app.db import session_scope

    assert upload(client, admin_headers, project["id"], to_csv(demo_rows(3))).status_code == 201
    headers = {"Authorization": f"Bearer {_make_user('bob', 'annotator')}"}
    add_to_every_project("bob")
    with session_scope() as session:
        session.execute(
            text(
                "CREATE TRIGGER always_taken BEFORE UPDATE OF leased_by_id ON items "
                "WHEN NEW.leased_by_id IS NOT NULL BEGIN SELECT RAISE(IGNORE); END"
            )
        )
    response = client.post(f"/api/v1/projects/{project['id']}/queue/next", headers=headers)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
