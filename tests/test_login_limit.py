"""Failed-login rate limiting: per username and address, on the login page and the API."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.browser import start_server
from tests.seeding import PASSWORD, csrf_of
from tests.support import free_port

MAX_FAILURES = 3


@pytest.fixture
def app(backend, monkeypatch):
    from app.core.auth import create_user
    from app.core.config import get_settings
    from app.core.db import session_scope
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


@contextmanager
def _served(data_dir) -> Iterator[str]:
    """`assay serve` as deployed (uvicorn, its thread pool, this process's ASSAY_* settings),
    with the users 'ada' and 'bob'; yields the base URL."""
    from app.core.auth import create_user
    from app.core.db import migrate, session_scope
    from app.models import Role, User

    migrate()
    with session_scope() as session:
        for name, role in (("ada", Role.admin), ("bob", Role.annotator)):
            if session.scalar(select(User.id).where(User.username == name)) is None:
                create_user(session, name, PASSWORD, role)
    port = free_port()
    server = start_server(data_dir, port, "--no-worker")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _all_at_once(n: int, prepare, send) -> list[int]:
    """``n`` threads each ``prepare()`` (unhurried), then ``send(prepared)`` together; their
    status codes."""
    barrier, codes = threading.Barrier(n), []

    def one() -> None:
        prepared = prepare()
        barrier.wait(timeout=60)
        codes.append(send(prepared))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(codes) == n
    return codes


def test_parallel_wrong_passwords_check_at_most_the_limit(backend, tmp_path):
    """Counted before the check, atomically: 12 guesses at once, only the limit is checked."""
    from app.core.config import get_settings

    limit, n = get_settings().login_max_failures, 12
    with _served(tmp_path) as base:

        def token(password: str) -> int:
            body = {"username": "ada", "password": password, "name": "t"}
            return httpx.post(f"{base}/api/v1/auth/token", json=body, timeout=60).status_code

        codes = _all_at_once(n, lambda: None, lambda _: token("wrong guess"))
        assert sorted(codes) == [401] * limit + [429] * (n - limit)
        assert token(PASSWORD) == 429  # limited: the right password is not checked either

        def login_form() -> tuple[httpx.Client, str]:
            browser = httpx.Client(base_url=base, timeout=60)
            return browser, csrf_of(browser.get("/login").text)

        def login(prepared: tuple[httpx.Client, str], password: str = "wrong guess") -> int:
            browser, csrf = prepared
            form = {"username": "bob", "password": password, "csrf_token": csrf}
            try:
                return browser.post("/login", data=form).status_code
            finally:
                browser.close()

        codes = _all_at_once(n, login_form, login)
        assert sorted(codes) == [401] * limit + [429] * (n - limit)
        assert login(login_form(), PASSWORD) == 429


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_forwarded_headers_count_only_from_a_trusted_proxy(backend, tmp_path, monkeypatch):
    """With no trusted proxy, a client at 127.0.0.1 cannot pick its address (X-Forwarded-For)
    or its scheme (X-Forwarded-Proto); with ASSAY_TRUSTED_PROXIES naming it, both count."""
    monkeypatch.setenv("ASSAY_LOGIN_MAX_FAILURES", "2")

    def attempts(base: str) -> list[int]:
        body = {"username": "ada", "password": "wrong guess", "name": "t"}
        return [
            httpx.post(
                f"{base}/api/v1/auth/token", json=body, headers={"X-Forwarded-For": f"10.1.1.{i}"}
            ).status_code
            for i in range(4)
        ]

    def cookie_is_secure(base: str) -> bool:
        page = httpx.get(f"{base}/login", headers={"X-Forwarded-Proto": "https"})
        return "secure" in page.headers["set-cookie"].lower()

    with _served(tmp_path) as base:
        assert attempts(base) == [401, 401, 429, 429]  # all counted against 127.0.0.1
        assert not cookie_is_secure(base)
    monkeypatch.setenv("ASSAY_TRUSTED_PROXIES", "10.9.0.0/16, 127.0.0.1")
    with _served(tmp_path) as base:
        assert attempts(base) == [401, 401, 401, 401]  # each forwarded client on its own
        assert cookie_is_secure(base)


def test_trusted_proxies_must_be_addresses(monkeypatch):
    from pydantic import ValidationError

    from app.core.config import Settings

    assert Settings(trusted_proxies=" 10.0.0.1, 10.2.0.0/16 ,").trusted_proxies == (
        "10.0.0.1,10.2.0.0/16"
    )
    with pytest.raises(ValidationError, match=r"'proxy\.local' is not an IP address or CIDR"):
        Settings(trusted_proxies="10.0.0.1,proxy.local")
