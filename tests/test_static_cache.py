"""Static assets and htmx carry cache headers; a revalidation with the ETag answers 304."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support import assay_env


@pytest.fixture
def sqlite_client(tmp_path):
    from app.main import create_app

    with assay_env(tmp_path, static_max_age_s="1234"), TestClient(create_app()) as client:
        yield client


@pytest.mark.parametrize("path", ["/static/assay.css", "/vendor/htmx.min.js"])
def test_assets_are_cacheable(sqlite_client, path):
    response = sqlite_client.get(path)
    assert response.status_code == 200 and response.content
    assert response.headers["cache-control"] == "public, max-age=1234"


def test_static_revalidation_keeps_the_header(sqlite_client):
    first = sqlite_client.get("/static/assay.css")
    again = sqlite_client.get("/static/assay.css", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["cache-control"] == "public, max-age=1234"


def test_pages_are_not_marked_public(sqlite_client):
    assert "public" not in sqlite_client.get("/login").headers.get("cache-control", "")
