"""In headless Chromium with every request off the app's origin refused: the API docs page
renders, and no page breaks the Content-Security-Policy (console and violation events)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import login, running_server
from tests.support import assay_env, demo_rows, to_csv

pytestmark = pytest.mark.browser
PASSWORD = "a-long-admin-passphrase-42"
REFRESH_S = 2  # the dashboard's stats are swapped in this often, so the test sees one swap
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(e.violatedDirective + " " + e.blockedURI));
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`assay serve` with one project of 12 silver items (no model: pages render without), the
    admin 'ada' and the annotator 'ann' (whose password the admin resets on the users page)."""
    from app.core.auth import create_user, issue_token
    from app.core.db import migrate, session_scope
    from app.models import Role

    data_dir = tmp_path_factory.mktemp("csp")
    with assay_env(data_dir, dashboard_refresh_s=str(REFRESH_S)):
        migrate()
        with session_scope() as session:
            token = issue_token(session, create_user(session, "ada", PASSWORD, Role.admin), "t")
            ann_id = create_user(session, "ann", PASSWORD, Role.annotator).id
        with running_server(data_dir) as base:
            api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
            project = api.post(
                "/api/v1/projects", json={"name": "Reviews", "labels": ["fresh", "rotten"]}
            ).json()
            uploaded = api.post(
                f"/api/v1/projects/{project['id']}/datasets",
                files={"file": ("f.csv", to_csv(demo_rows(12)))},
                data={"kind": "silver"},
            )
            assert uploaded.status_code == 201, uploaded.text
            item = api.get(f"/api/v1/projects/{project['id']}/items?order=id").json()["items"][0]
            yield {"base": base, "project": project["id"], "item": item["id"], "ann": ann_id}


@pytest.fixture
def page(browser, server):
    """A page whose requests leave the app's origin never: they are aborted and recorded."""
    context = browser.new_context()
    outside: list[str] = []

    def route(request_route) -> None:
        url = request_route.request.url
        if url.startswith(server["base"] + "/") or url.startswith("data:"):
            request_route.continue_()
        else:
            outside.append(url)
            request_route.abort()

    context.route("**/*", route)
    context.add_init_script(WATCH_VIOLATIONS)
    page = context.new_page()
    page.console = []
    page.outside = outside
    page.on("console", lambda m: page.console.append(f"{m.type}: {m.text}"))
    yield page
    context.close()


def assert_clean(page) -> None:
    violations = page.evaluate("window.__violations")
    csp_console = [m for m in page.console if "Content Security Policy" in m]
    assert violations == [] and csp_console == [], (page.url, violations, csp_console)


def test_the_docs_page_renders_with_no_network(page, server):
    page.goto(server["base"] + "/api/v1/docs")
    page.get_by_text("/api/v1/projects/{project_id}/export").first.wait_for(timeout=20_000)
    assert page.locator(".opblock").count() > 20  # the operations list
    assert_clean(page)
    assert page.outside == []


def test_no_page_breaks_the_policy(page, server):
    base, pid, item = server["base"], server["project"], server["item"]
    page.goto(base + "/login")
    assert_clean(page)
    login(page, base, "ada", PASSWORD)
    for path in (
        "/",
        f"/projects/{pid}",
        f"/projects/{pid}/queue",
        f"/items/{item}",
        f"/projects/{pid}/review",
        f"/projects/{pid}/dashboard",
        "/admin/users",
        "/admin/tokens",
        "/account/password",
    ):
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("typeof htmx") == "object", path  # the script ran
        assert_clean(page)
    page.goto(f"{base}/projects/{pid}/queue")  # an htmx swap: a decision, then the next item
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")
    assert_clean(page)
    assert page.outside == []


def _submitted(page, form: str, fields: dict[str, str]):
    """Fill and submit the form matching the selector ``form``; the response to its POST."""
    for name, value in fields.items():
        page.locator(f"{form} input[name={name}]").fill(value)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.locator(f"{form} button").click()
    page.wait_for_load_state("networkidle")
    return posted.value


def test_password_forms_and_the_dashboards_swap_keep_the_policy(page, server):
    base, pid = server["base"], server["project"]
    login(page, base, "ada", PASSWORD)

    page.goto(base + "/account/password")  # the page with its error, nothing changed
    refused = _submitted(
        page,
        "form[action='/account/password']",
        {
            "current_password": "not my password at all",
            "new_password": "amber kettle orbit 42",
            "new_password_again": "amber kettle orbit 42",
        },
    )
    assert refused.status == 422 and "wrong password" in page.content()
    assert_clean(page)

    page.goto(base + "/admin/users")  # the admin resets ann's password
    reset = _submitted(
        page,
        f"form[action='/admin/users/{server['ann']}/password']",
        {"password": "amber kettle orbit 42"},
    )
    assert reset.status == 303 and page.url == base + "/admin/users"
    assert_clean(page)

    page.goto(f"{base}/projects/{pid}/dashboard")  # the stats, swapped in by htmx polling
    page.wait_for_load_state("networkidle")
    page.evaluate("document.getElementById('dashboard-stats').dataset.before = 'swap'")
    with page.expect_response(
        lambda r: r.url == f"{base}/projects/{pid}/dashboard/stats", timeout=5_000 * REFRESH_S
    ) as polled:
        pass
    assert polled.value.status == 200
    # swapped: the marked element is gone (a locator; the CSP forbids wait_for_function's eval)
    expect(page.locator("#dashboard-stats[data-before]")).to_have_count(0)
    assert_clean(page)
    assert page.outside == []
