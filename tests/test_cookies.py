"""The session cookie's flags: HttpOnly and SameSite always, Secure over HTTPS."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tests.seeding import PASSWORD, csrf_of

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _session_cookie(response) -> list[str]:
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith("assay_session=")]
    assert len(cookies) == 1, response.headers
    return [part.strip().lower() for part in cookies[0].split(";")]


def _login(client: TestClient, headers: dict | None = None):
    """The login form's GET and POST; the POST's response carries the logged-in session."""
    headers = headers or {}
    csrf = csrf_of(client.get("/login", headers=headers).text)
    form = {"username": "ada", "password": PASSWORD, "csrf_token": csrf}
    response = client.post("/login", data=form, headers=headers, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response


def test_http_cookie_is_httponly_and_samesite_but_not_secure(client, admin_headers):
    flags = _session_cookie(_login(client))
    assert "httponly" in flags and "samesite=lax" in flags
    assert "secure" not in flags


def test_https_cookie_is_secure(client, admin_headers):
    https = TestClient(client.app, base_url="https://testserver")
    flags = _session_cookie(_login(https))
    assert {"httponly", "samesite=lax", "secure"} <= set(flags)
    assert https.get("/").status_code == 200  # the browser sends it back over https


def _first_visit(client: TestClient, headers: dict | None = None):
    """The login page's response: it starts the session (for its CSRF token)."""
    return client.get("/login", headers=headers or {})


def test_behind_a_trusted_proxy_forwarded_https_makes_it_secure(client, admin_headers):
    """uvicorn's own proxy-headers middleware, as `assay serve` runs it."""
    proxied = TestClient(ProxyHeadersMiddleware(client.app, trusted_hosts="*"))
    flags = _session_cookie(_first_visit(proxied, {"X-Forwarded-Proto": "https"}))
    assert {"httponly", "samesite=lax", "secure"} <= set(flags)
    plain = TestClient(ProxyHeadersMiddleware(client.app, trusted_hosts="*"))
    assert "secure" not in _session_cookie(_first_visit(plain))
    # a client that is not the trusted proxy cannot claim https
    untrusted = TestClient(ProxyHeadersMiddleware(client.app, trusted_hosts="10.9.9.9"))
    forged = _first_visit(untrusted, {"X-Forwarded-Proto": "https"})
    assert "secure" not in _session_cookie(forged)


def test_secure_cookies_setting_forces_secure(backend, monkeypatch):
    from app.core.config import get_settings
    from app.main import create_app

    monkeypatch.setenv("ASSAY_SECURE_COOKIES", "true")
    get_settings.cache_clear()
    try:
        with TestClient(create_app()) as client:
            flags = _session_cookie(_first_visit(client))  # plain http, but configured
            assert {"httponly", "samesite=lax", "secure"} <= set(flags)
    finally:
        get_settings.cache_clear()
