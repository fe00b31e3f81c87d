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
        ('{"name": "\\u00a0\\u200b", "labels": ["a", "b"]}', ["body", "name"], "only spaces"),
        ('{"name": "P", "labels": ["fresh", "\\u200b"]}', ["body", "labels"], "non-empty"),
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
        "invisible-name",
        "invisible-label",
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
    from app.core.config import get_settings
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
    other_case = client.post(
        "/api/v1/projects", headers=admin_headers, json={**body, "name": "REVIEWS"}
    )
    assert other_case.status_code == 409, other_case.text
    assert other_case.json() == {"detail": "name: a project named 'Reviews' already exists"}
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

    from app.core.db import session_scope

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


GOOD_PROJECT = b'{"name": "P", "labels": ["fresh", "rotten"]}'


@pytest.mark.parametrize(
    "extra",
    [
        [("content-type", "application/json"), ("content-type", "text/plain")],
        [("content-type", "application/json"), ("content-length", "99999999")],
    ],
    ids=["content-type-twice", "content-length-twice"],
)
def test_a_repeated_body_header_is_400(client, admin_headers, extra):
    """Starlette reads the first of a repeated header; the limits once read the last, so
    'application/json' then 'text/plain' skipped the strict JSON check (a duplicate key
    stored, a lone surrogate a 500 on SQLite) and a second Content-Length its cap. Either
    header sent twice is refused before any parse."""
    from app.models import Project

    name = extra[-1][0]
    body = b'{"name": "a\\ud800b", "name": "x", "labels": ["fresh", "rotten"]}'
    if name == "content-length":
        body = GOOD_PROJECT
        extra = [*extra, ("content-length", str(len(body)))]
    headers = [("authorization", admin_headers["Authorization"]), *extra]
    response = client.post("/api/v1/projects", headers=headers, content=body)
    assert response.status_code == 400, response.text[:300]
    assert response.json() == {"detail": f"{name}: send this header once, not several times"}
    assert count_rows(Project) == 0


@pytest.mark.parametrize(
    ("content_type", "parsed_as_json"),
    [
        ("application/json", True),
        ("APPLICATION/JSON; charset=utf-8", True),
        ("application/vnd.assay+json", True),
        (None, False),
        ("text/plain", False),
        ("text/x+json", False),
        ("application/json, text/plain", False),
    ],
)
def test_strict_json_check_runs_exactly_when_fastapi_parses_json(
    client, admin_headers, content_type, parsed_as_json
):
    """The middleware's strict parse must use FastAPI's own rule (application/json or
    application/*+json; no Content-Type is not JSON): a body FastAPI reads as JSON gets the
    strict 422 (duplicate key), any other body FastAPI's own 422 (not an object). Either
    way a 4xx with nothing stored; before, no Content-Type or text/x+json got the strict
    check for a body FastAPI never parses."""
    from app.models import Project

    headers = dict(admin_headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    body = b'{"name": "P", "name": "Q", "labels": ["fresh", "rotten"]}'
    response = client.post("/api/v1/projects", headers=headers, content=body)
    assert response.status_code == 422, response.text[:300]
    issue = response.json()["detail"][0]
    assert ("twice" in issue["msg"]) is parsed_as_json, issue
    assert (issue.get("type") == "model_attributes_type") is not parsed_as_json, issue
    assert count_rows(Project) == 0


HUGE = "x" * 200_000


def test_huge_page_fields_and_cursor_get_a_short_4xx(client, admin_headers, project):
    """A 200 KB label or action on the queue and review forms, or a 60 KB cursor on the items
    list (all digits: int() refused 5,000 digits with a 500), is refused with a short body
    (the fields' max_length, the cursor's message in an excerpt); nothing is stored."""
    from app.models import LabelEvent

    csrf = page_login(client, "ada")
    key = "k" * 10
    pid = project["id"]
    assert upload(client, admin_headers, pid, to_csv(demo_rows(3))).status_code == 201
    forms = [
        (f"/projects/{pid}/queue/1", {"action": "label", "label": HUGE}),
        (f"/projects/{pid}/queue/1", {"action": HUGE}),
        (f"/projects/{pid}/review/1", {"label": HUGE}),
    ]
    for url, data in forms:
        response = client.post(url, data={**data, "idempotency_key": key, "csrf_token": csrf})
        assert 400 <= response.status_code < 500, (url, response.status_code)
        assert len(response.content) < 2048, (url, len(response.content))
    for cursor in ("9" * 60_000, "x" * 60_000):  # httpx sends at most 64 KiB of query
        response = client.get(
            f"/api/v1/projects/{pid}/items", headers=admin_headers, params={"cursor": cursor}
        )
        assert response.status_code == 422, response.text[:300]
        assert len(response.content) < 2048, len(response.content)
    assert count_rows(LabelEvent) == 0


def test_unknown_label_message_is_short(client, admin_headers):
    """A project with many long labels: a wrong label's message quotes excerpts of the label
    and of the project's set, not all of them (before: every label, here 200 KB)."""
    from app.core.config import get_settings
    from app.models import LabelEvent

    labels = [f"{i:04d}" + "y" * 190 for i in range(get_settings().max_labels)]
    created = client.post(
        "/api/v1/projects", headers=admin_headers, json={"name": "Wide", "labels": labels}
    )
    assert created.status_code == 201, created.text[:300]
    pid = created.json()["id"]
    data = f"text,label\nfine,{labels[0]}\nbad,{labels[1]}\n".encode()
    assert upload(client, admin_headers, pid, data).status_code == 201
    item = client.post(f"/api/v1/projects/{pid}/queue/next", headers=admin_headers).json()
    response = client.post(
        f"/api/v1/items/{item['id']}/label",
        headers=admin_headers,
        json={"label": "z" * 200, "idempotency_key": "abcdefgh12"},
    )
    assert 400 <= response.status_code < 500 and len(response.content) < 2048, (
        response.status_code,
        response.text[:300],
    )
    assert "unknown label" in response.text
    assert count_rows(LabelEvent) == 0


@pytest.mark.parametrize("field", ["name", "labels"])
def test_page_form_with_bytes_that_are_not_utf8_is_422(client, admin_headers, field):
    """A lone surrogate's bytes (%ED%A0%80) in a page form: Starlette would decode them to
    U+FFFD and store that; the API refuses the same text, and so does the page."""
    from app.models import Project

    csrf = page_login(client, "ada")
    form = {"name": "P", "labels": "a,b", "csrf_token": csrf}
    form[field] = "%ED%A0%80" if field == "name" else "a,%ED%A0%80"
    body = "&".join(f"{k}={v}" for k, v in form.items())
    response = client.post(
        "/projects",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert count_rows(Project) == 0
