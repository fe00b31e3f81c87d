"""The shared queue in headless Chromium against a real `assay serve`: two annotators side by
side, keyboard-only labelling with skip and undo, drafts across a reload, overlap and
agreement on the project page, and the reviewer's page."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import login, running_server
from tests.seeding import add_members
from tests.support import assay_env, demo_rows, to_csv

pytestmark = pytest.mark.browser
PASSWORD = "annotate-all-day"
ANNOTATORS = ("cara", "dan", "eve", "fay", "gus", "hal")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """`assay serve` with two 30-item silver projects (no model: the queue is upload order),
    six annotators, a reviewer and an admin with an API token."""
    from app.core.auth import create_user, issue_token
    from app.core.db import migrate, session_scope
    from app.models import Role

    data_dir = tmp_path_factory.mktemp("queue-browser")
    with assay_env(data_dir):
        migrate()
        tokens, ids = {}, {}
        with session_scope() as session:
            for name, role in [(n, Role.annotator) for n in ANNOTATORS] + [
                ("rita", Role.reviewer),
                ("ada", Role.admin),
            ]:
                user = create_user(session, name, PASSWORD, role)
                tokens[name], ids[name] = issue_token(session, user, "tests"), user.id
        with running_server(data_dir) as base:
            api = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {tokens['ada']}"}, timeout=30
            )
            projects = {}
            for name in ("queue", "review"):
                project = api.post(
                    "/api/v1/projects", json={"name": name, "labels": ["fresh", "rotten"]}
                ).json()
                response = api.post(
                    f"/api/v1/projects/{project['id']}/datasets",
                    files={"file": ("silver.csv", to_csv(demo_rows(30)))},
                    data={"kind": "silver"},
                )
                assert response.status_code == 201, response.text
                add_members(project["id"], *ANNOTATORS, "rita")
                projects[name] = project["id"]
            yield {"base": base, "api": api, "tokens": tokens, "ids": ids, **projects}
            api.close()


def queue_page(browser, site, username: str):
    context = browser.new_context()
    page = context.new_page()
    login(page, site["base"], username, PASSWORD)
    page.goto(f"{site['base']}/projects/{site['queue']}/queue")
    expect(page.locator("article.item")).to_be_visible()
    return page


def shown(page) -> str:
    return page.locator("article.item").get_attribute("data-item-id")


def act(page, *keys: str) -> str:
    """Press the keys, wait for the next item, and return its id."""
    before = shown(page)
    for name in keys:
        page.keyboard.press(name)
    expect(page.locator("article.item")).not_to_have_attribute("data-item-id", before)
    return shown(page)


def test_two_annotators_in_two_browser_contexts_never_see_the_same_item(site, browser):
    cara, dan = queue_page(browser, site, "cara"), queue_page(browser, site, "dan")
    assert shown(cara) != shown(dan)
    seen = {"cara": [shown(cara)], "dan": [shown(dan)]}
    for turn in range(8):
        page, name, other = (cara, "cara", dan) if turn % 2 == 0 else (dan, "dan", cara)
        keys = ("s",) if turn == 3 else ("1", "Enter")
        seen[name].append(act(page, *keys))
        assert shown(page) != shown(other)
    for page in (cara, dan):  # a reload keeps each one's leased item
        before = shown(page)
        page.reload()
        assert shown(page) == before
    assert shown(cara) != shown(dan)
    decided = site["api"].get(f"/api/v1/projects/{site['queue']}/items?order=id&limit=100")
    reviewed = [i for i in decided.json()["items"] if i["status"] == "reviewed"]
    assert len(reviewed) == 7  # eight turns, one of them a skip
    for page in (cara, dan):
        page.context.close()


def test_keyboard_only_labelling_of_five_items_with_a_skip_and_an_undo(site, browser):
    page = queue_page(browser, site, "eve")
    first = shown(page)
    page.keyboard.press("2")
    expect(page.locator("input[name=label][value=rotten]")).to_be_checked()
    act(page, "Enter")
    skipped = shown(page)
    act(page, "s")  # back of eve's queue
    undone = shown(page)
    act(page, "1", "Enter")
    assert act(page, "u") == undone  # the undone item comes back to eve
    expect(page.locator(".notice")).to_contain_text("undone")
    act(page, "2", "Enter")
    labelled = [first, undone]
    for _ in range(3):
        labelled.append(shown(page))
        act(page, "1", "Enter")
    assert len(set(labelled)) == 5 and skipped not in labelled

    api, eve = site["api"], site["ids"]["eve"]
    for item_id in labelled:
        detail = api.get(f"/api/v1/items/{item_id}").json()
        assert detail["status"] == "reviewed"
        mine = [e for e in detail["history"] if e["user_id"] == eve]
        assert mine and mine[-1]["source"] == "annotator"
    undone_history = api.get(f"/api/v1/items/{undone}").json()["history"]
    assert [(e["source"], e["new_label"]) for e in undone_history] == [
        ("annotator", "fresh"),
        ("undo", undone_history[0]["old_label"]),
        ("annotator", "rotten"),
    ]
    assert api.get(f"/api/v1/items/{skipped}").json()["status"] == "pending"
    page.goto(f"{site['base']}/items/{undone}")
    rows = page.locator("#history tr.event")
    expect(rows).to_have_count(3)
    expect(rows.nth(1)).to_contain_text(re.compile(r"eve.*undo", re.S))
    page.context.close()


def test_a_draft_survives_a_reload_and_is_cleared_on_submit(site, browser):
    page = queue_page(browser, site, "fay")
    item_id = shown(page)
    draft = f"assay:draft:{site['queue']}:{item_id}"
    page.keyboard.press("2")
    page.keyboard.press("n")
    page.keyboard.type("sarcasm, not praise")
    page.keyboard.press("Escape")
    page.reload()
    assert shown(page) == item_id
    expect(page.locator("input[name=label][value=rotten]")).to_be_checked()
    expect(page.locator("input[name=note]")).to_have_value("sarcasm, not praise")
    act(page, "Enter")
    assert page.evaluate(f"localStorage.getItem('{draft}')") is None
    page.goto(f"{site['base']}/items/{item_id}")
    expect(page.locator("#history tr.event")).to_contain_text("sarcasm, not praise")
    page.context.close()


def test_overlap_agreement_and_the_reviewer_page(site, browser):
    base, project = site["base"], site["review"]
    admin = browser.new_context().new_page()
    login(admin, base, "ada", PASSWORD)
    admin.goto(f"{base}/projects/{project}")
    admin.locator("#queue-settings input[name=overlap]").fill("2")
    admin.locator("#queue-settings button[type=submit]").click()
    expect(admin.locator("#queue-settings")).to_contain_text("labelled by 2 annotators")
    assert site["api"].get(f"/api/v1/projects/{project}").json()["settings"]["overlap"] == 2

    def vote(name: str, label: str) -> int:
        client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {site['tokens'][name]}"}
        )
        item = client.post(f"/api/v1/projects/{project}/queue/next").json()
        response = client.post(
            f"/api/v1/items/{item['id']}/label",
            json={"label": label, "idempotency_key": f"{name}-{item['id']}-vote"},
        )
        assert response.status_code == 200, response.text
        client.close()
        return item["id"]

    agreed = vote("gus", "fresh")
    assert vote("hal", "fresh") == agreed
    tied = vote("gus", "fresh")
    assert vote("hal", "rotten") == tied
    admin.reload()
    expect(admin.locator("#agreement")).to_contain_text("Agreement on 2 items")
    expect(admin.locator("#agreement .kappa")).to_have_text("0.000")

    reviewer = browser.new_context().new_page()
    login(reviewer, base, "rita", PASSWORD)
    reviewer.goto(f"{base}/projects/{project}/review")
    rows = reviewer.locator("tr.review-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-item-id", str(tied))  # ties first
    expect(rows.first).to_contain_text("gus: fresh")
    rows.first.locator("button.override", has_text="rotten").click()
    expect(reviewer.locator(f"#review-{tied}")).to_contain_text("Saved: rotten")
    reviewer.locator(f"#review-{agreed} button.approve").click()
    expect(reviewer.locator(f"#review-{agreed}")).to_contain_text("Saved: fresh")
    last = site["api"].get(f"/api/v1/items/{tied}").json()["history"][-1]
    assert (last["source"], last["user_id"], last["new_label"]) == (
        "review",
        site["ids"]["rita"],
        "rotten",
    )
    reviewer.goto(f"{base}/projects/{project}/review")
    expect(reviewer.locator("tr.review-row")).to_have_count(0)
    annotator = browser.new_context().new_page()
    login(annotator, base, "gus", PASSWORD)
    assert annotator.goto(f"{base}/projects/{project}/review").status == 403
    for page in (admin, reviewer, annotator):
        page.context.close()
