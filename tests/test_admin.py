"""Admin pages for users, roles and API tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.seeding import NEW_PASSWORD, PASSWORD, page_login, stored_user


@pytest.fixture
def admin(client, admin_headers, annotator_headers) -> str:
    """The test client logged in as the admin 'ada' ('ann' is an annotator); its CSRF token."""
    return page_login(client, "ada")


def _post(client, url: str, csrf: str, **data):
    return client.post(url, data={"csrf_token": csrf, **data}, follow_redirects=False)


def test_admin_pages_need_an_admin(client, admin_headers, annotator_headers):
    for url in ("/admin/users", "/admin/tokens"):
        anonymous = client.get(url, follow_redirects=False)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == f"/login?next={url}"
    csrf = page_login(client, "ann")
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/tokens").status_code == 403
    form = {"username": "eve", "password": NEW_PASSWORD, "role": "admin"}
    refused = _post(client, "/admin/users", csrf, **form)
    assert refused.status_code == 403 and stored_user("eve") is None
    assert "/admin/users" not in client.get("/").text


def test_forms_need_the_csrf_token(client, admin):
    response = client.post(
        "/admin/users", data={"username": "eve", "password": NEW_PASSWORD, "role": "admin"}
    )
    assert response.status_code == 403 and stored_user("eve") is None


def test_create_a_user_who_can_then_log_in(client, admin):
    response = _post(client, "/admin/users", admin, username="bea", password=NEW_PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/admin/users"
    page = client.get("/admin/users").text
    assert 'data-username="bea"' in page
    assert stored_user("bea").role == "annotator"
    other = TestClient(client.app)
    page_login(other, "bea", NEW_PASSWORD)
    assert other.get("/").status_code == 200


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"username": "bad name!", "password": NEW_PASSWORD}, "username"),
        ({"username": "ann", "password": NEW_PASSWORD}, "username"),
        ({"username": "bea", "password": "short"}, "password"),
        ({"username": "bea", "password": "password1234"}, "password"),
        ({"username": "bea", "password": NEW_PASSWORD, "role": "overlord"}, "role"),
    ],
    ids=["bad-username", "taken-username", "short-password", "common-password", "unknown-role"],
)
def test_bad_user_form_names_the_field_and_creates_nobody(client, admin, form, field):
    response = _post(client, "/admin/users", admin, **form)
    assert response.status_code == 422
    assert re.search(rf'role="alert">{field}: ', response.text), response.text
    assert stored_user("bea") is None


def test_change_role_but_not_ones_own_admin_role(client, admin):
    ann = stored_user("ann")
    assert _post(client, f"/admin/users/{ann.id}/role", admin, role="admin").status_code == 303
    assert stored_user("ann").role == "admin"
    ada = stored_user("ada")
    refused = _post(client, f"/admin/users/{ada.id}/role", admin, role="annotator")
    assert refused.status_code == 422 and "yourself" in refused.text
    assert stored_user("ada").role == "admin"
    bad = _post(client, f"/admin/users/{ann.id}/role", admin, role="overlord")
    assert bad.status_code == 422 and "role: unknown role" in bad.text
    assert _post(client, "/admin/users/9999/role", admin, role="admin").status_code == 404


def test_deactivate_stops_logins_sessions_and_tokens_then_reactivate(
    client, admin, annotator_headers
):
    ann_page = TestClient(client.app)
    page_login(ann_page, "ann")
    assert client.get("/api/v1/projects", headers=annotator_headers).status_code == 200
    ann = stored_user("ann")

    assert _post(client, f"/admin/users/{ann.id}/deactivate", admin).status_code == 303
    assert client.get("/api/v1/projects", headers=annotator_headers).status_code == 401
    assert ann_page.get("/", follow_redirects=False).status_code == 303  # to the login page
    login = TestClient(client.app)
    form = login.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
    refused = login.post(
        "/login", data={"username": "ann", "password": PASSWORD, "csrf_token": token}
    )
    assert refused.status_code == 401
    api_login = client.post("/api/v1/auth/token", json={"username": "ann", "password": PASSWORD})
    assert api_login.status_code == 401
    row = re.search(r'<tr data-username="ann".*?</tr>', client.get("/admin/users").text, re.S)[0]
    assert "deactivated" in row and "Reactivate" in row

    ada = stored_user("ada")
    refused = _post(client, f"/admin/users/{ada.id}/deactivate", admin)
    assert refused.status_code == 422 and "yourself" in refused.text

    assert _post(client, f"/admin/users/{ann.id}/reactivate", admin).status_code == 303
    page_login(TestClient(client.app), "ann")  # the old password works again
    assert client.get("/api/v1/projects", headers=annotator_headers).status_code == 401


def test_token_is_shown_once_stored_hashed_works_and_is_revoked(client, admin):
    from app.core.auth import hash_token
    from app.core.db import session_scope
    from app.models import ApiToken

    ann = stored_user("ann")
    created = _post(client, "/admin/tokens", admin, user_id=str(ann.id), name="weekly dump")
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    token = re.search(r'<code class="token">([^<]+)</code>', created.text)[1]
    with session_scope() as session:
        stored = session.scalar(select(ApiToken).where(ApiToken.name == "weekly dump"))
        assert stored.user_id == ann.id and stored.token_hash == hash_token(token) != token
        token_id = stored.id
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/projects", headers=headers).status_code == 200
    listing = client.get("/admin/tokens").text
    assert "weekly dump" in listing and token not in listing

    assert _post(client, f"/admin/tokens/{token_id}/revoke", admin).status_code == 303
    assert client.get("/api/v1/projects", headers=headers).status_code == 401
    assert "weekly dump" not in client.get("/admin/tokens").text
    assert _post(client, f"/admin/tokens/{token_id}/revoke", admin).status_code == 404


def test_bad_token_form_names_the_field(client, admin):
    ann = stored_user("ann")
    nameless = _post(client, "/admin/tokens", admin, user_id=str(ann.id), name="  ")
    assert nameless.status_code == 422 and 'role="alert">name: ' in nameless.text
    _post(client, f"/admin/users/{ann.id}/deactivate", admin)
    locked = _post(client, "/admin/tokens", admin, user_id=str(ann.id), name="x")
    assert locked.status_code == 422 and "deactivated" in locked.text
    assert _post(client, "/admin/tokens", admin, user_id="9999", name="x").status_code == 404
