"""Page forms and page URLs with input the database cannot hold, on SQLite and PostgreSQL:
NUL characters, names and labels longer than their columns, ids past the INTEGER columns.
Each is refused with a 4xx naming the field, and nothing is stored (each was a 500 on
PostgreSQL, or stored as-is on SQLite, before)."""

from __future__ import annotations

import pytest

from tests.seeding import page_login
from tests.support import database_rows
from tests.test_role_matrix import _setup

BIG = 2**70  # past int4 and SQLite's int64

POSTS = [
    ("/projects", {"name": "a\x00b", "labels": "x, y"}, 422, "name: must not contain NUL"),
    ("/projects", {"name": "ok", "labels": "x\x00, y"}, 422, "labels: must not contain NUL"),
    ("/projects", {"name": "n" * 201, "labels": "x, y"}, 422, "name: at most 200"),
    ("/projects", {"name": "ok", "labels": "x, " + "y" * 201}, 422, "labels: each at most 200"),
    ("/admin/users", {"username": "eve", "password": "x\x00" * 6}, 422, "password: must not"),
    ("/admin/tokens", {"user_id": "{user_id}", "name": "t\x00"}, 422, "name: must not"),
    ("/admin/tokens", {"user_id": str(BIG), "name": "t"}, 422, "user_id"),
    (f"/admin/users/{BIG}/role", {"role": "admin"}, 422, "user_id"),
    (f"/projects/{BIG}/jobs", {}, 422, "project_id"),
    (
        "/projects/{project_id}/queue/{item_id}",
        {"action": "label", "label": "fresh", "note": "n\x00", "idempotency_key": "k" * 9},
        422,
        "note: must not",
    ),
    (
        "/projects/{project_id}/review/{item_id}",
        {"label": "fresh", "idempotency_key": "k\x00" * 5},
        422,
        "idempotency_key: must not",
    ),
    ("/login", {"username": "ada\x00", "password": "x"}, 422, "username: must not"),
]
GETS = [f"/projects/{BIG}", f"/items/{BIG}", f"/jobs/{BIG}/progress", f"/projects/{BIG}/queue"]


@pytest.mark.parametrize(("url", "form", "status", "words"), POSTS)
def test_page_form_the_database_cannot_hold_is_refused(
    client, admin_headers, url, form, status, words
):
    ids = _setup(client, admin_headers)
    csrf = page_login(client, "ada")
    before = database_rows()
    form = {name: value.format(**ids) for name, value in form.items()}
    response = client.post(
        url.format(**ids), data={**form, "csrf_token": csrf}, follow_redirects=False
    )
    assert response.status_code == status and words in response.text, response.text[:500]
    assert database_rows() == before


def test_page_url_with_an_id_past_the_integer_columns_is_refused(client, admin_headers):
    page_login(client, "ada")
    for url in GETS:
        assert client.get(url, follow_redirects=False).status_code == 422, url
