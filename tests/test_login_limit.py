"""Failed-login rate limiting: per username and address, on the login page and the API."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from tests.seeding import PASSWORD, csrf_of

MAX_FAILURES = 3


@pytest.fixture
def app(backend, monkeypatch):
    from app.auth import create_user
    from app.config import get_settings
    from app.db import session_scope
    from app.main import create_app
    from app.models import Role

    monkeypatch.setenv("ASSAY_LOGIN_MAX_FAILURES", str(MAX_FAILURES))
    monkeypatch.setenv("ASSAY_LOGIN_WINDOW_S", "2")
    get_settings.cache_clear()
    application = create_app()
    with TestClient(application):  # runs the migrations
        with session_scope() as session:
            create_user(session, "ada", PASSWORD, Role.admin)
            create_user(session, "bob", PASSWORD, Role.annotator)
        yield application
    get_settings.cache_clear()


def _api(app, username: str, password: str, address: str = "10.0.0.1"):
    client = TestClient(app, client=(address, 40000))
    body = {"username": username, "password": password, "name": "t"}
    return client.post("/api/v1/auth/token", json=body)


def _page(app, username: str, password: str, address: str = "10.0.0.1"):
    client = TestClient(app, client=(address, 40000))
    csrf = csrf_of(client.get("/login").text)
    form = {"username": username, "password": password, "csrf_token": csrf}
    return client.post("/login", data=form, follow_redirects=False)


def test_api_login_is_limited_per_username_and_address(app):
    for _ in range(MAX_FAILURES):
        assert _api(app, "ada", "wrong password").status_code == 401
    refused = _api(app, "ada", PASSWORD)  # even the right password: no guessing goes on
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    assert _api(app, "bob", PASSWORD).status_code == 201  # another user from that address
    assert _api(app, "ada", PASSWORD, address="10.0.0.2").status_code == 201  # another address
    time.sleep(2.1)  # the failures leave the window
    assert _api(app, "ada", PASSWORD).status_code == 201


def test_page_login_is_limited_and_shares_the_count_with_the_api(app):
    assert _api(app, "ada", "wrong password").status_code == 401
    for _ in range(MAX_FAILURES - 1):
        assert _page(app, "ada", "wrong password").status_code == 401
    refused = _page(app, "ADA", PASSWORD)  # usernames count case-insensitively
    assert refused.status_code == 429
    assert "Too many failed logins for this user from your address" in refused.text
    assert 'role="alert"' in refused.text and "Retry-After" in refused.headers
    assert _page(app, "ada", PASSWORD, address="10.0.0.3").status_code == 303


def test_a_successful_login_clears_the_count(app):
    for _ in range(MAX_FAILURES - 1):
        assert _page(app, "ada", "wrong password").status_code == 401
    assert _page(app, "ada", PASSWORD).status_code == 303
    for _ in range(MAX_FAILURES - 1):
        assert _page(app, "ada", "wrong password").status_code == 401
    assert _page(app, "ada", PASSWORD).status_code == 303
