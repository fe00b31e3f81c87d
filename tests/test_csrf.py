"""Every POST of the web pages refuses a missing or wrong CSRF token and changes nothing, on
SQLite and PostgreSQL.

``FORMS`` holds a valid form for each route, so the token is the only thing wrong; the same
form with the right token then gets past the check (proving the refusal came from it). A POST
route missing from ``FORMS`` fails ``test_every_page_post_is_covered``.
"""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from tests.seeding import NEW_PASSWORD, PASSWORD, csrf_of, page_login
from tests.support import database_rows, demo_rows, to_csv
from tests.test_role_matrix import _setup, app_routes


def _key() -> str:
    return uuid.uuid4().hex


FORMS = {
    "POST /login": lambda ids: {"username": "ada", "password": PASSWORD},
    "POST /logout": lambda ids: {},
    # a wrong current password: past the token check, a 422 that leaves the admin's login intact
    "POST /account/password": lambda ids: {
        "current_password": "not the password",
        "new_password": NEW_PASSWORD,
        "new_password_again": NEW_PASSWORD,
    },
    "POST /projects": lambda ids: {"name": "Forged", "labels": "a, b"},
    "POST /projects/{project_id}/datasets": lambda ids: {"kind": "silver"},
    "POST /projects/{project_id}/jobs": lambda ids: {},
    "POST /projects/{project_id}/settings": lambda ids: {"estimator": "loss"},
    "POST /projects/{project_id}/retraining": lambda ids: {"retrain_every": "5"},
    "POST /projects/{project_id}/queue/undo": lambda ids: {"idempotency_key": _key()},
    "POST /projects/{project_id}/queue/{item_id}": lambda ids: {
        "action": "label",
        "label": "rotten",
        "idempotency_key": _key(),
    },
    "POST /projects/{project_id}/review/{item_id}": lambda ids: {
        "label": "rotten",
        "idempotency_key": _key(),
    },
    "POST /projects/{project_id}/overlap": lambda ids: {"overlap": "2"},
    "POST /projects/{project_id}/members": lambda ids: {"username": "victim"},
    "POST /projects/{project_id}/members/{user_id}/remove": lambda ids: {},
    "POST /items/{item_id}/label": lambda ids: {"label": "rotten", "idempotency_key": _key()},
    "POST /projects/{project_id}/bulk/preview": lambda ids: {
        "item_id": str(ids["item_id"]),
        "label": "rotten",
    },
    "POST /projects/{project_id}/bulk": lambda ids: {
        "item_id": str(ids["item_id"]),
        "label": "rotten",
        "idempotency_key": _key(),
    },
    "POST /projects/{project_id}/bulk/{group_id}/undo": lambda ids: {},
    "POST /projects/{project_id}/span-groups/preview": lambda ids: {
        "span": f"{ids['item_id']}:0:1",
        "from_type": "fresh",
        "label": "rotten",
    },
    "POST /projects/{project_id}/span-groups/apply": lambda ids: {
        "span": f"{ids['item_id']}:0:1",
        "from_type": "fresh",
        "label": "rotten",
        "idempotency_key": _key(),
    },
    "POST /admin/users": lambda ids: {"username": "eve", "password": "x" * 12, "role": "admin"},
    "POST /admin/users/{user_id}/role": lambda ids: {"role": "admin"},
    "POST /admin/users/{user_id}/password": lambda ids: {"password": NEW_PASSWORD},
    "POST /admin/users/{user_id}/deactivate": lambda ids: {},
    "POST /admin/users/{user_id}/reactivate": lambda ids: {},
    "POST /admin/tokens": lambda ids: {"user_id": str(ids["user_id"]), "name": "stolen"},
    "POST /admin/tokens/{token_id}/revoke": lambda ids: {},
}


def test_every_page_post_is_covered(client):
    posts = {r for r in app_routes(client.app) if r.startswith("POST /") and "/api/" not in r}
    assert posts == FORMS.keys()


def _browser(app, route: str) -> tuple[TestClient, str]:
    """A fresh browser and its session's token: anonymous for the login form, else the admin."""
    browser = TestClient(app)
    if route == "POST /login":
        return browser, csrf_of(browser.get("/login").text)
    return browser, page_login(browser, "ada")


def _post(browser: TestClient, route: str, ids: dict, form: dict, headers: dict | None = None):
    path = route.split(" ", 1)[1].format(**ids)
    files = None
    if route.endswith("/datasets"):
        files = {"file": ("forged.csv", to_csv(demo_rows(2, offset=40)), "text/csv")}
    return browser.post(path, data=form, files=files, headers=headers, follow_redirects=False)


def _logged_in(browser: TestClient) -> bool:
    return browser.get("/", follow_redirects=False).status_code == 200


def test_page_posts_refuse_a_missing_or_wrong_csrf_token(client, admin_headers):
    ids = _setup(client, admin_headers)
    _, someone_elses = _browser(client.app, "POST /projects")  # valid, but another session's
    refused = []
    for route, make_form in FORMS.items():
        browser, token = _browser(client.app, route)
        attempts = {
            "no token": ({}, None),
            "wrong token": ({"csrf_token": "forged"}, None),
            "another session's token": ({"csrf_token": someone_elses}, None),
            "wrong header, right field": ({"csrf_token": token}, {"X-CSRF-Token": "forged"}),
            "wrong header": ({}, {"X-CSRF-Token": "forged"}),
        }
        for attempt, (extra, headers) in attempts.items():
            before, was_logged_in = database_rows(), _logged_in(browser)
            response = _post(browser, route, ids, make_form(ids) | extra, headers)
            if response.status_code != 403 or "form token" not in response.text:
                refused.append(f"{route} with {attempt}: {response.status_code}")
            if database_rows() != before:
                refused.append(f"{route} with {attempt}: the database changed")
            if _logged_in(browser) != was_logged_in:
                refused.append(f"{route} with {attempt}: logged in or out")
        accepted = _post(browser, route, ids, make_form(ids) | {"csrf_token": token})
        assert accepted.status_code not in (403, 500), (route, accepted.text[:300])
    assert not refused, "\n".join(refused)
