"""Every response carries the security headers: pages, API, fragments, static files,
redirects and errors (404, 405, 413, 500), for an admin and for nobody."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from tests.seeding import page_login

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}
POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def assert_headers(response, https: bool = False) -> None:
    where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (where, name)
    nonce = re.fullmatch(
        r".*'nonce-([A-Za-z0-9_-]{16,})'.*", response.headers["content-security-policy"]
    )
    assert nonce, where
    assert response.headers["content-security-policy"] == POLICY.format(nonce=nonce[1]), where
    assert ("strict-transport-security" in response.headers) is https, where


def every_route(app) -> list[tuple[str, str]]:
    found = []
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            for method in sorted(context.methods - {"HEAD", "OPTIONS"}):
                found.append((method, re.sub(r"\{[^}]+\}", "1", context.path)))
    return found


def test_every_route_answers_with_the_headers(client, admin_headers, project):
    routes = every_route(client.app)
    assert len(routes) > 40
    anonymous = TestClient(client.app, raise_server_exceptions=False)
    admin = TestClient(client.app, raise_server_exceptions=False)
    page_login(admin, "ada")
    for method, path in routes:
        api = {"headers": admin_headers} if path.startswith("/api/") else {}
        for who, kwargs in ((admin, api), (anonymous, {})):
            response = who.request(method, path, follow_redirects=False, **kwargs)
            assert response.status_code < 500, (method, path, response.text[:200])
            assert_headers(response)


def test_static_files_errors_and_redirects_carry_them(client, admin_headers):
    for path in (
        "/static/assay.css",
        "/vendor/htmx.min.js",
        "/vendor/swagger-ui/swagger-ui.css",
        "/api/v1/openapi.json",
        "/api/v1/docs",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_headers(response)
    for path, status in (
        ("/static/nothing.css", 404),
        ("/vendor/swagger-ui/index.html", 404),  # only the files the docs page needs
        ("/no/such/page", 404),
        ("/api/v1/projects/999", 404),
        ("/", 303),  # to the login page
    ):
        response = client.get(path, headers=admin_headers, follow_redirects=False)
        assert response.status_code == status, path
        assert_headers(response)
    not_allowed = client.put("/api/v1/projects", headers=admin_headers)
    assert not_allowed.status_code == 405
    assert_headers(not_allowed)
    too_big = client.post(
        "/api/v1/projects",
        headers={**admin_headers, "content-type": "application/json"},
        content=b'{"name": "' + b"x" * (8 * 1024 * 1024) + b'"}',
    )
    assert too_big.status_code == 413
    assert_headers(too_big)


def test_a_crash_is_a_500_with_the_headers(client):
    def boom() -> None:
        raise RuntimeError("boom")

    client.app.add_api_route("/boom", boom)
    crashed = TestClient(client.app, raise_server_exceptions=False).get("/boom")
    assert crashed.status_code == 500 and "Internal Server Error" in crashed.text
    assert_headers(crashed)


def test_hsts_only_over_https_and_a_new_nonce_each_time(client):
    https = TestClient(client.app, base_url="https://testserver")
    assert_headers(https.get("/login"), https=True)
    assert https.get("/login").headers["strict-transport-security"] == "max-age=31536000"
    first, second = client.get("/api/v1/docs"), client.get("/api/v1/docs")
    nonces = [
        re.search(r"'nonce-([^']+)'", r.headers["content-security-policy"])[1]
        for r in (first, second)
    ]
    assert nonces[0] != nonces[1]
    assert f'<script nonce="{nonces[0]}">' in first.text  # the docs page's inline start-up
    assert "cdn" not in first.text.lower()
