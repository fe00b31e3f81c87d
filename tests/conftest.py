"""Fixtures: the app on SQLite and on PostgreSQL, with real users and tokens."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.seeding import add_members, add_to_every_project
from tests.support import assay_env, postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """An empty, migrated database of each kind, with this test's own data directory."""
    if request.param == "sqlite":
        with assay_env(tmp_path) as env:
            yield env
    else:
        with postgres_database() as url, assay_env(tmp_path, database_url=url) as env:
            yield env


@pytest.fixture
def client(backend):
    from app.main import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


def _make_user(username: str, role: str) -> str:
    from app.core.auth import create_user, issue_token
    from app.core.db import session_scope
    from app.models import Role

    with session_scope() as session:
        user = create_user(session, username, "correct horse battery", Role(role))
        return issue_token(session, user, "tests")


@pytest.fixture
def admin_headers(client) -> dict[str, str]:
    return {"Authorization": f"Bearer {_make_user('ada', 'admin')}"}


@pytest.fixture
def annotator_headers(client) -> dict[str, str]:
    """Annotator 'ann', a member of the ``project`` fixture's project (whichever comes first)."""
    headers = {"Authorization": f"Bearer {_make_user('ann', 'annotator')}"}
    add_to_every_project("ann")
    return headers


@pytest.fixture
def project(client, admin_headers) -> dict:
    """Project 'Reviews'; the fixtures' non-admin users ('ann') are its members."""
    response = client.post(
        "/api/v1/projects",
        headers=admin_headers,
        json={"name": "Reviews", "labels": ["fresh", "rotten"]},
    )
    assert response.status_code == 201, response.text
    add_members(response.json()["id"], "ann")
    return response.json()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium, one per test module (the browser tests share it)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import launch_chromium

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()
