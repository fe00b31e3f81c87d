"""An annotator's day in the queue, in headless Chromium against a real `assay serve`: the
progress line and the confirmation after each decision, what is pre-selected (nothing by
default, so Enter alone sends nothing; the suggestion when the project says so), and the
project's guidelines (set on the project page, opened on the first visit and with G, rendered
inert)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import login, running_server
from tests.seeding import add_members, seed_model_version
from tests.support import assay_env, demo_rows, to_csv
from tests.test_browser_queue import PASSWORD, act, shown

pytestmark = pytest.mark.browser
ANNOTATORS = ("ivy", "jon", "kim")
ITEMS = 30
HOSTILE = (
    '# House rules\n\n<script>document.title = "owned"</script>\n\n'
    "[click](javascript:document.title='owned') · [rules](https://example.org/rules)\n\n"
    '<img src="x" onerror="document.title=\'owned\'">\n\n*Sarcasm* is **rotten**.\n'
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """`assay serve` with three 30-item silver projects ranked by a model version (whose
    suggestion is 'fresh' for every item), three annotators and an admin."""
    from app.core.auth import create_user, issue_token
    from app.core.db import migrate, session_scope
    from app.models import Role

    data_dir = tmp_path_factory.mktemp("queue-day")
    with assay_env(data_dir):
        migrate()
        with session_scope() as session:
            for name, role in [(n, Role.annotator) for n in ANNOTATORS] + [("ada", Role.admin)]:
                user = create_user(session, name, PASSWORD, role)
                if name == "ada":
                    token = issue_token(session, user, "tests")
        with running_server(data_dir) as base:
            api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
            projects = {}
            for name in ("day", "suggest", "rules"):
                project = api.post(
                    "/api/v1/projects", json={"name": name, "labels": ["fresh", "rotten"]}
                ).json()
                response = api.post(
                    f"/api/v1/projects/{project['id']}/datasets",
                    files={"file": ("silver.csv", to_csv(demo_rows(ITEMS)))},
                    data={"kind": "silver"},
                )
                assert response.status_code == 201, response.text
                items = api.get(f"/api/v1/projects/{project['id']}/items?order=id&limit=100")
                ids = [i["id"] for i in items.json()["items"]]
                seed_model_version(project["id"], ids, ["fresh", "rotten"])
                add_members(project["id"], *ANNOTATORS)
                projects[name] = project["id"]
            yield {"base": base, "api": api, **projects}
            api.close()


def open_queue(browser, site, username: str, project: str):
    page = browser.new_context().new_page()
    login(page, site["base"], username, PASSWORD)
    page.goto(f"{site['base']}/projects/{site[project]}/queue")
    expect(page.locator("article.item")).to_be_visible()
    return page


def test_progress_line_and_confirmation_follow_each_decision(site, browser):
    page = open_queue(browser, site, "ivy", "day")
    progress = page.locator("#queue-progress")
    expect(progress.locator(".decided-today")).to_have_text("0")
    expect(progress.locator(".left")).to_have_text(str(ITEMS))
    expect(progress.locator(".wrong-left")).to_have_text("unknown yet")
    labelled = page.locator("article.item .meta a").inner_text()
    page.keyboard.press("2")
    act(page, "Enter")
    expect(progress.locator(".decided-today")).to_have_text("1")
    expect(progress.locator(".left")).to_have_text(str(ITEMS - 1))
    # one review is no rate to estimate from (fewer than 10 reviews: still unknown)
    expect(progress.locator(".wrong-left")).to_have_text("unknown yet")
    saved = page.locator(".queue-saved")
    expect(saved).to_have_text(f"Saved: rotten for item {labelled} (undo: U)")
    expect(page.locator("#queue-status[role=status]")).to_have_text(
        f"Saved: rotten for item {labelled} (undo: U)"
    )
    expect(saved).to_be_hidden(timeout=8000)  # a brief confirmation: it fades out
    page.keyboard.press("u")
    expect(progress.locator(".decided-today")).to_have_text("0")  # undone: not a decision
    expect(progress.locator(".left")).to_have_text(str(ITEMS))
    page.context.close()


def test_nothing_is_preselected_by_default_and_enter_alone_sends_nothing(site, browser):
    page = open_queue(browser, site, "jon", "day")
    item_id = shown(page)
    expect(page.locator("input[name=label]:checked")).to_have_count(0)
    page.keyboard.press("Enter")
    expect(page.locator("#pick-first")).to_be_visible()
    expect(page.locator("#queue-status")).to_contain_text("Pick a label first")
    page.locator("#decision button[data-action=label]").click()  # the mouse too
    page.locator("input[name=note]").click()
    page.keyboard.press("Enter")  # and Enter from the note field
    page.wait_for_timeout(500)
    assert shown(page) == item_id
    history = site["api"].get(f"/api/v1/items/{item_id}").json()["history"]
    assert [e for e in history if e["source"] == "annotator"] == []
    expect(page.locator("#queue-progress .decided-today")).to_have_text("0")
    page.keyboard.press("Escape")  # out of the note field
    page.keyboard.press("1")
    expect(page.locator("#pick-first")).to_be_hidden()
    act(page, "Enter")
    expect(page.locator("#queue-progress .decided-today")).to_have_text("1")
    page.context.close()


def test_with_suggestion_set_the_suggestion_is_preselected(site, browser):
    project = site["suggest"]
    admin = browser.new_context().new_page()
    login(admin, site["base"], "ada", PASSWORD)
    admin.goto(f"{site['base']}/projects/{project}")
    admin.select_option("#preselect-form select[name=preselect]", "suggestion")
    admin.locator("#preselect-form button[type=submit]").click()
    expect(admin.locator("#preselect-form select[name=preselect]")).to_have_value("suggestion")
    assert site["api"].get(f"/api/v1/projects/{project}").json()["preselect"] == "suggestion"
    admin.context.close()

    page = open_queue(browser, site, "kim", "suggest")
    expect(page.locator("input[name=label]:checked")).to_have_count(1)
    expect(page.locator("input[name=label][value=fresh]")).to_be_checked()  # the suggestion
    act(page, "Enter")
    expect(page.locator(".queue-saved")).to_contain_text("Saved: fresh for item")
    page.context.close()


def test_guidelines_open_on_first_visit_and_with_g_and_are_inert(site, browser):
    project = site["rules"]
    admin = browser.new_context().new_page()
    login(admin, site["base"], "ada", PASSWORD)
    admin.goto(f"{site['base']}/projects/{project}")
    admin.locator("#guidelines-form textarea[name=guidelines]").fill(HOSTILE)
    admin.locator("#guidelines-form button[type=submit]").click()
    expect(admin.locator("#guidelines-form textarea")).to_have_value(HOSTILE.strip())
    admin.context.close()

    page = open_queue(browser, site, "ivy", "rules")
    panel = page.locator("#guidelines")
    expect(panel).to_be_visible()  # the first visit opens them
    expect(panel.locator("h1")).to_have_text("House rules")
    expect(panel.locator("strong")).to_have_text("rotten")
    expect(panel.locator("a[href='https://example.org/rules']")).to_have_count(1)
    expect(panel.locator("script")).to_have_count(0)
    expect(panel.locator("img")).to_have_count(0)
    expect(panel.locator("a[href^='javascript' i]")).to_have_count(0)
    assert page.locator("#guidelines [onerror], #guidelines [onclick]").count() == 0
    assert page.title() != "owned"
    page.keyboard.press("g")
    expect(panel).to_be_hidden()
    page.keyboard.press("G")
    expect(panel).to_be_visible()
    page.reload()  # the second visit: closed, until G
    expect(page.locator("article.item")).to_be_visible()
    expect(panel).to_be_hidden()
    page.keyboard.press("g")
    expect(panel).to_be_visible()
    assert page.title() != "owned"
    page.context.close()
