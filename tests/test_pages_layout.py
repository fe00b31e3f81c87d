"""The pages as a person meets them: a phone's width without sideways scrolling, error pages in
the site's style (a role refusal, a missing page, a wrong method, a crash), fragments opened by
hand sent on to their page, and a favicon. Real Chromium against a real `assay serve`, on SQLite
and PostgreSQL; the crash page through the app itself."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from tests.browser import login, running_server
from tests.seeding import add_members
from tests.support import assay_env, demo_rows, postgres_database, to_csv
from tests.test_security_headers import assert_headers

PASSWORD = "annotate-all-day"
PHONE = {"width": 390, "height": 844}
LONG_FILE = "silver_labels_exported_from_the_old_annotation_tool_2024-06.csv"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    """`assay serve` with a project that has data, a job and two members (admin and annotator)."""
    data_dir = tmp_path_factory.mktemp(f"layout-{request.param}")
    if request.param == "sqlite":
        with assay_env(data_dir) as env:
            yield from _serve(data_dir, env)
    else:
        with postgres_database() as url, assay_env(data_dir, database_url=url) as env:
            yield from _serve(data_dir, env)


def _serve(data_dir, env):
    from app.core.auth import create_user, issue_token
    from app.core.db import migrate, session_scope
    from app.models import Role

    migrate()
    with session_scope() as session:
        create_user(session, "anna", PASSWORD, Role.annotator)
        token = issue_token(session, create_user(session, "ada", PASSWORD, Role.admin), "t")
    with (
        running_server(data_dir) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api,
    ):
        project = api.post(
            "/api/v1/projects",
            json={"name": "Reviews of the spring catalogue", "labels": ["fresh", "rotten"]},
        ).json()
        pid = project["id"]
        uploaded = api.post(
            f"/api/v1/projects/{pid}/datasets", files={"file": (LONG_FILE, to_csv(demo_rows(30)))}
        )
        assert uploaded.status_code == 201, uploaded.text
        add_members(pid, "anna")
        job = api.post(f"/api/v1/projects/{pid}/jobs", json={}).json()
        item = api.get(f"/api/v1/projects/{pid}/items?order=id").json()["items"][0]
        yield {"base": base, "project_id": pid, "job_id": job["id"], "item_id": item["id"]}


def _page(browser, server, username: str, viewport: dict | None = None):
    page = browser.new_page(viewport=viewport or PHONE)
    login(page, server["base"], username, PASSWORD)
    return page


def _scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.browser
def test_the_pages_fit_a_phone_without_sideways_scrolling(browser, server):
    pid, base = server["project_id"], server["base"]
    page = _page(browser, server, "ada")
    for path in (
        f"/projects/{pid}",
        "/",
        f"/projects/{pid}/queue",
        f"/items/{server['item_id']}",
        f"/projects/{pid}/dashboard",
        f"/projects/{pid}/items",
        f"/projects/{pid}/review",
        "/admin/users",
        "/admin/tokens",
    ):
        page.goto(base + path)
        expect(page.locator("header.top .who")).to_contain_text("ada")
        page.wait_for_load_state("networkidle")  # htmx-loaded parts (queue settings) are in
        assert _scroll_width(page) <= PHONE["width"], path
    page.goto(f"{base}/projects/{pid}")
    expect(page.get_by_text(LONG_FILE)).to_be_visible()  # the wide table scrolls in its box
    page.close()


@pytest.mark.browser
def test_a_page_the_role_may_not_open_is_the_styled_403(browser, server):
    page = _page(browser, server, "anna")
    for path in (f"/projects/{server['project_id']}/review", "/admin/users"):
        response = page.goto(server["base"] + path)
        assert response.status == 403 and "text/html" in response.headers["content-type"]
        expect(page.locator("header.top .brand")).to_have_text("Assay")
        expect(page.locator("header.top .who")).to_contain_text("anna")  # still logged in
        expect(page.locator("h1")).to_have_text("403 · Forbidden")
        expect(page.get_by_role("link", name="Back to your projects")).to_have_attribute(
            "href", "/"
        )
        assert _scroll_width(page) <= PHONE["width"]
    page.close()


@pytest.mark.browser
def test_a_missing_page_is_the_styled_404_and_the_api_keeps_json(browser, server):
    base = server["base"]
    page = browser.new_page(viewport=PHONE)
    response = page.goto(f"{base}/no/such/page")
    assert response.status == 404
    expect(page.locator("header.top .brand")).to_have_text("Assay")
    expect(page.locator("h1")).to_have_text("404 · Not Found")
    expect(page.get_by_role("link", name="Log in")).to_have_attribute(
        "href", "/login?next=/no/such/page"
    )
    page.close()
    page = _page(browser, server, "anna")
    response = page.goto(f"{base}/projects/999999")  # not a project, or not hers: the same
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("404 · Not Found")
    expect(page.locator("main")).to_contain_text("project 999999 not found")
    api = page.request.get(f"{base}/api/v1/projects/999999")
    assert api.status == 401 and api.json() == {"detail": "missing bearer token"}
    htmx = page.request.get(f"{base}/projects/999999", headers={"HX-Request": "true"})
    assert htmx.status == 404 and htmx.json() == {"detail": "project 999999 not found"}
    page.close()


@pytest.mark.browser
def test_a_fragment_opened_directly_goes_to_its_page(browser, server):
    pid, base = server["project_id"], server["base"]
    page = _page(browser, server, "ada", viewport={"width": 1200, "height": 900})
    for fragment, whole in (
        (f"/projects/{pid}/queue-settings", f"/projects/{pid}"),
        (f"/jobs/{server['job_id']}/progress", f"/projects/{pid}"),
        (f"/projects/{pid}/dashboard/stats", f"/projects/{pid}/dashboard"),
    ):
        page.goto(base + fragment)
        assert page.url == base + whole, fragment
        expect(page.locator("header.top .brand")).to_have_text("Assay")
        swapped = page.request.get(base + fragment, headers={"HX-Request": "true"})
        assert swapped.status == 200 and "<header" not in swapped.text(), fragment
    page.close()


@pytest.mark.browser
def test_the_favicon(browser, server):
    base = server["base"]
    page = browser.new_page()
    page.goto(f"{base}/login")
    expect(page.locator('link[rel="icon"]')).to_have_attribute("href", "/static/favicon.svg")
    for path in ("/favicon.ico", "/static/favicon.svg"):
        response = page.request.get(base + path)
        assert response.status == 200, path
        assert response.headers["content-type"].startswith("image/svg+xml"), path
        assert response.text().lstrip().startswith("<svg"), path
    page.close()


def test_a_crash_is_the_styled_500_on_pages_and_plain_on_the_api(client):
    def boom() -> None:
        raise RuntimeError("boom")

    client.app.add_api_route("/projects/boom/crash", boom)
    client.app.add_api_route("/api/v1/boom", boom)
    browser = TestClient(client.app, raise_server_exceptions=False)
    crashed = browser.get("/projects/boom/crash")
    assert crashed.status_code == 500 and "text/html" in crashed.headers["content-type"]
    assert '<a class="brand" href="/">Assay</a>' in crashed.text
    assert "500 · Internal Server Error" in crashed.text
    assert_headers(crashed)
    for plain in (
        browser.get("/api/v1/boom"),
        browser.get("/projects/boom/crash", headers={"HX-Request": "true"}),
    ):
        assert plain.status_code == 500 and plain.text == "Internal Server Error"
        assert_headers(plain)


def test_a_wrong_method_is_the_styled_405_with_allow(client):
    response = client.get("/logout")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert "405 · Method Not Allowed" in response.text
    assert_headers(response)
    api = client.put("/api/v1/projects")
    assert api.status_code == 405 and api.json() == {"detail": "Method Not Allowed"}
