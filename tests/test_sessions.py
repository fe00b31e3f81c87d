"""Page sessions that end: logout, deactivation, role and password changes end every session of
the user (an old cookie replayed afterwards gets the login page), and so do the idle timeout and
the absolute lifetime. The password policy holds on the CLI, the pages and the API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from base64 import b64decode, b64encode

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner

from tests.seeding import NEW_PASSWORD, PASSWORD, csrf_of, page_login, stored_user

COOKIE = "assay_session"
HTMX = {"HX-Request": "true"}  # what htmx sends with every request it makes


@pytest.fixture
def ann(client, admin_headers, annotator_headers) -> TestClient:
    """A browser logged in as the annotator 'ann' ('ada' is the admin)."""
    browser = TestClient(client.app)
    page_login(browser, "ann")
    return browser


@pytest.fixture
def admin(client) -> tuple[TestClient, str]:
    """A browser logged in as the admin 'ada', and its CSRF token."""
    browser = TestClient(client.app)
    return browser, page_login(browser, "ada")


def _replayed(app, cookie: str):
    """The home page requested with exactly this session cookie (a fresh browser)."""
    browser = TestClient(app)
    browser.cookies.set(COOKIE, cookie)
    return browser.get("/", follow_redirects=False)


def _assert_ended(app, cookie: str) -> None:
    response = _replayed(app, cookie)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/login?next=/"


def _assert_alive(app, cookie: str) -> None:
    response = _replayed(app, cookie)
    assert response.status_code == 200, response.headers


def _admin_post(admin, url: str, **data):
    browser, csrf = admin
    return browser.post(url, data={"csrf_token": csrf, **data}, follow_redirects=False)


def _change_own_password(browser, new: str, *, current: str = PASSWORD, again: str = ""):
    """The account page's password form, sent with its CSRF token by a logged-in ``browser``;
    ``again`` (the repeat) is ``new`` unless given. The password tests vary only these."""
    form = {
        "csrf_token": csrf_of(browser.get("/account/password").text),
        "current_password": current,
        "new_password": new,
        "new_password_again": again or new,
    }
    return browser.post("/account/password", data=form)


def test_logout_ends_every_session_of_thestored_user(client, ann):
    other = TestClient(client.app)  # ann on a second device
    page_login(other, "ann")
    old = ann.cookies[COOKIE]
    _assert_alive(client.app, old)
    logout = other.post(
        "/logout", data={"csrf_token": csrf_of(other.get("/").text)}, follow_redirects=False
    )
    assert logout.status_code == 303 and logout.headers["location"] == "/login"
    _assert_ended(client.app, old)
    assert ann.get("/", follow_redirects=False).status_code == 303
    page_login(TestClient(client.app), "ann")  # logging in again works


def test_deactivation_then_reactivation_does_not_revive_old_cookies(client, ann, admin):
    old, ann_id = ann.cookies[COOKIE], stored_user("ann").id
    assert _admin_post(admin, f"/admin/users/{ann_id}/deactivate").status_code == 303
    _assert_ended(client.app, old)
    assert _admin_post(admin, f"/admin/users/{ann_id}/reactivate").status_code == 303
    _assert_ended(client.app, old)
    fresh = TestClient(client.app)
    page_login(fresh, "ann")  # the password works again, in a new session
    _assert_alive(client.app, fresh.cookies[COOKIE])


def test_role_change_ends_the_users_sessions(client, ann, admin):
    old, ann_id = ann.cookies[COOKIE], stored_user("ann").id
    assert _admin_post(admin, f"/admin/users/{ann_id}/role", role="annotator").status_code == 303
    _assert_alive(client.app, old)  # the same role: nothing changed
    assert _admin_post(admin, f"/admin/users/{ann_id}/role", role="reviewer").status_code == 303
    _assert_ended(client.app, old)


def test_own_password_change_ends_the_other_sessions_and_keeps_this_one(client, ann):
    other = TestClient(client.app)
    page_login(other, "ann")
    before = ann.cookies[COOKIE]
    changed = _change_own_password(ann, NEW_PASSWORD)
    assert changed.status_code == 200 and "Password changed" in changed.text
    assert ann.get("/", follow_redirects=False).status_code == 200  # this browser stays in
    _assert_ended(client.app, before)  # this browser's cookie from before the change
    assert other.get("/", follow_redirects=False).status_code == 303  # the other device
    page_login(TestClient(client.app), "ann", NEW_PASSWORD)
    login = TestClient(client.app)
    refused = login.post(
        "/login",
        data={
            "username": "ann",
            "password": PASSWORD,
            "csrf_token": csrf_of(login.get("/login").text),
        },
    )
    assert refused.status_code == 401


def test_admin_password_reset_ends_the_users_sessions(client, ann, admin):
    old, ann_id = ann.cookies[COOKIE], stored_user("ann").id
    reset = _admin_post(admin, f"/admin/users/{ann_id}/password", password=NEW_PASSWORD)
    assert reset.status_code == 303 and reset.headers["location"] == "/admin/users"
    _assert_ended(client.app, old)
    page_login(TestClient(client.app), "ann", NEW_PASSWORD)
    assert admin[0].get("/admin/users").status_code == 200  # the admin's own session is not hit


def test_admin_resetting_their_own_password_stays_logged_in(client, ann, admin):
    browser, _ = admin
    old = browser.cookies[COOKIE]
    reset = _admin_post(
        admin, f"/admin/users/{stored_user('ada').id}/password", password=NEW_PASSWORD
    )
    assert reset.status_code == 303
    _assert_ended(client.app, old)
    assert browser.get("/admin/users").status_code == 200


def test_api_password_change_ends_page_sessions_but_keeps_tokens(client, ann, annotator_headers):
    old = ann.cookies[COOKIE]
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    changed = client.post("/api/v1/auth/password", headers=annotator_headers, json=body)
    assert changed.status_code == 204, changed.text
    _assert_ended(client.app, old)
    assert client.get("/api/v1/projects", headers=annotator_headers).status_code == 200
    page_login(TestClient(client.app), "ann", NEW_PASSWORD)


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=os.environ.copy(),  # the backend fixture's ASSAY_* settings
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_set_password_ends_sessions_and_applies_the_policy(client, ann):
    old, hash_before = ann.cookies[COOKIE], stored_user("ann").password_hash
    weak = _run_cli("user", "set-password", "ann", "--password", "password1234")
    assert weak.returncode != 0
    assert "this password is among the most common ones" in weak.stderr
    assert stored_user("ann").password_hash == hash_before
    _assert_alive(client.app, old)

    done = _run_cli("user", "set-password", "ann", "--password", NEW_PASSWORD)
    assert done.returncode == 0, done.stderr
    _assert_ended(client.app, old)
    page_login(TestClient(client.app), "ann", NEW_PASSWORD)
    missing = _run_cli("user", "set-password", "nobody", "--password", NEW_PASSWORD)
    assert missing.returncode != 0 and "no user 'nobody'" in missing.stderr


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "password must be at least 12 characters"),
        ("password1234", "this password is among the most common ones"),
        ("P@ssw0rd1234", "this password is too easy to guess"),
    ],
    ids=["short", "common", "guessable"],
)
def test_password_policy_everywhere_with_nothing_stored(
    client, ann, admin, annotator_headers, password, message
):
    hash_before, ann_id = stored_user("ann").password_hash, stored_user("ann").id

    created = _run_cli("user", "create", "bea", "--password", password)
    assert created.returncode != 0 and message in created.stderr
    assert stored_user("bea") is None

    page = _admin_post(admin, "/admin/users", username="bea", password=password)
    assert page.status_code == 422 and message in page.text
    assert stored_user("bea") is None
    reset = _admin_post(admin, f"/admin/users/{ann_id}/password", password=password)
    assert reset.status_code == 422 and message in reset.text

    own = _change_own_password(ann, password)
    assert own.status_code == 422 and message in own.text

    body = {"current_password": PASSWORD, "new_password": password}
    api = client.post("/api/v1/auth/password", headers=annotator_headers, json=body)
    assert api.status_code == 422 and message in api.json()["detail"]

    assert stored_user("ann").password_hash == hash_before
    assert ann.get("/", follow_redirects=False).status_code == 200  # no session ended


def test_wrong_current_password_or_mismatch_changes_nothing(client, ann, annotator_headers):
    hash_before = stored_user("ann").password_hash
    wrong = _change_own_password(ann, NEW_PASSWORD, current="not it at all")
    assert wrong.status_code == 422 and "current_password: wrong password" in wrong.text
    mismatch = _change_own_password(ann, NEW_PASSWORD, again=NEW_PASSWORD + "!")
    assert mismatch.status_code == 422 and "the two passwords differ" in mismatch.text
    body = {"current_password": "not it at all", "new_password": NEW_PASSWORD}
    api = client.post("/api/v1/auth/password", headers=annotator_headers, json=body)
    assert api.status_code == 422 and "current_password: wrong password" in api.json()["detail"]
    assert stored_user("ann").password_hash == hash_before


def _decoded(cookie: str) -> dict:
    """The session a Starlette cookie carries (base64 JSON, then the signature)."""
    return json.loads(b64decode(cookie.split(".")[0]))


def _forged(session: dict) -> str:
    """A cookie for ``session`` signed with the app's own key, as the app would sign it: the
    session's times can be moved into the past without waiting."""
    from app.core.config import get_settings

    signer = TimestampSigner(get_settings().resolved_secret_key())
    return signer.sign(b64encode(json.dumps(session).encode())).decode()


def test_idle_timeout_and_absolute_lifetime_end_a_session(client, ann):
    from app.core.auth import SESSION_ISSUED, SESSION_SEEN, SESSION_USER, SESSION_VERSION
    from app.core.config import get_settings

    settings, now = get_settings(), int(time.time())
    session = _decoded(ann.cookies[COOKIE])
    assert {SESSION_USER, SESSION_VERSION, SESSION_ISSUED, SESSION_SEEN} <= session.keys()
    _assert_alive(client.app, _forged(session))  # the forgery itself is accepted

    idle = {**session, SESSION_SEEN: now - settings.session_idle_timeout_s - 5}
    _assert_ended(client.app, _forged(idle))
    recent = {**session, SESSION_SEEN: now - settings.session_idle_timeout_s + 60}
    _assert_alive(client.app, _forged(recent))

    lifetime = settings.session_max_lifetime_s
    old = {**session, SESSION_ISSUED: now - lifetime - 5, SESSION_SEEN: now}
    _assert_ended(client.app, _forged(old))
    young = {**session, SESSION_ISSUED: now - lifetime + 60, SESSION_SEEN: now}
    _assert_alive(client.app, _forged(young))

    pre_upgrade = {SESSION_USER: session[SESSION_USER]}  # a cookie from before session versions
    _assert_ended(client.app, _forged(pre_upgrade))


def test_last_seen_is_refreshed_by_each_page_request(client, ann):
    from app.core.auth import SESSION_SEEN

    now = int(time.time())
    session = _decoded(ann.cookies[COOKIE])
    browser = TestClient(client.app)
    browser.cookies.set(COOKIE, _forged({**session, SESSION_SEEN: now - 600}))
    response = browser.get("/")
    assert response.status_code == 200
    assert _decoded(response.cookies[COOKIE])[SESSION_SEEN] >= now


def _login_token(client, password: str) -> dict[str, str]:
    """A token minted from ann's password on POST /api/v1/auth/token."""
    minted = client.post(
        "/api/v1/auth/token", json={"username": "ann", "password": password, "name": "laptop"}
    )
    assert minted.status_code == 201, minted.text
    return {"Authorization": f"Bearer {minted.json()['token']}"}


def _api_status(client, headers: dict[str, str]) -> int:
    return client.get("/api/v1/projects", headers=headers).status_code


def test_a_new_password_revokes_login_tokens_but_not_admin_made_ones(
    client, ann, admin, annotator_headers
):
    ann_id = stored_user("ann").id
    page = _admin_post(admin, "/admin/tokens", user_id=str(ann_id), name="script")
    assert page.status_code == 201, page.text
    on_page = re.search(r'<code class="token">([^<]+)</code>', page.text)[1]
    made = [annotator_headers, {"Authorization": f"Bearer {on_page}"}]  # CLI-like, admin page

    stolen, own = _login_token(client, PASSWORD), _login_token(client, PASSWORD)
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    changed = client.post("/api/v1/auth/password", headers=own, json=body)
    assert changed.status_code == 204, changed.text
    assert _api_status(client, stolen) == 401  # whoever learnt the old password is out
    assert _api_status(client, own) == 401  # the changing token too: log in with the new one
    assert [_api_status(client, headers) for headers in made] == [200, 200]

    minted = _login_token(client, NEW_PASSWORD)
    reset = _admin_post(admin, f"/admin/users/{ann_id}/password", password=PASSWORD)
    assert reset.status_code == 303
    assert _api_status(client, minted) == 401
    assert [_api_status(client, headers) for headers in made] == [200, 200]
    assert _api_status(client, _login_token(client, PASSWORD)) == 200


def test_polling_does_not_keep_an_idle_session_alive(client, project, admin):
    from app.core.auth import SESSION_SEEN
    from app.core.config import get_settings
    from app.core.db import session_scope
    from app.models import Job

    project_id = project["id"]
    with session_scope() as session:
        job = Job(project_id=project_id, kind="train_score")
        session.add(job)
        session.flush()
        job_id = job.id
    almost_idle = int(time.time()) - get_settings().session_idle_timeout_s + 30
    browser, _ = admin
    session = _decoded(browser.cookies[COOKIE])
    for url in (f"/projects/{project_id}/dashboard/stats", f"/jobs/{job_id}/progress"):
        poller = TestClient(client.app)
        poller.cookies.set(COOKIE, _forged({**session, SESSION_SEEN: almost_idle}))
        polled = poller.get(url, headers=HTMX, follow_redirects=False)  # as htmx polls
        assert polled.status_code == 200, url
        kept = polled.cookies.get(COOKIE, poller.cookies[COOKIE])
        assert _decoded(kept)[SESSION_SEEN] == almost_idle, url  # not counted as activity
        page = poller.get("/", follow_redirects=False)  # a page the user asked for is
        assert page.status_code == 200
        assert _decoded(page.cookies[COOKIE])[SESSION_SEEN] > almost_idle


def test_the_retired_session_max_age_setting_is_refused(client, monkeypatch):
    from app.core.config import Settings

    monkeypatch.setenv("ASSAY_SESSION_MAX_AGE_S", "3600")
    with pytest.raises(ValueError, match="ASSAY_SESSION_MAX_AGE_S is no longer read") as refused:
        Settings()
    assert "ASSAY_SESSION_IDLE_TIMEOUT_S" in str(refused.value)
    assert "ASSAY_SESSION_MAX_LIFETIME_S" in str(refused.value)
    started = _run_cli("user", "set-password", "nobody", "--password", NEW_PASSWORD)
    assert started.returncode != 0
    assert "ASSAY_SESSION_MAX_AGE_S is no longer read" in started.stderr
