"""The data browser in headless Chromium, against a real `assay serve` and its worker after a
real training job: filter the items, open one and relabel it there; from an item, "items like
this", select three, preview the bulk relabel, confirm it, and undo it as a group."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import login, trained_demo_server
from tests.support import assay_env

pytestmark = pytest.mark.browser
PASSWORD = "browse-the-silver"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One trained project for the module's tests (training is the slow part)."""
    from app.core.auth import create_user, issue_token
    from app.core.db import migrate, session_scope
    from app.models import Role

    data_dir = tmp_path_factory.mktemp("browse")
    with assay_env(data_dir):
        migrate()
        with session_scope() as session:
            token = issue_token(session, create_user(session, "ada", PASSWORD, Role.admin), "t")
        with trained_demo_server(data_dir, token, {"silver": 30, "gold_dev": 10}) as running:
            yield running


def _row(page, item_id: int):
    return page.locator(f"tr.item-row[data-item-id='{item_id}']")


def test_filter_open_and_relabel(server, browser):
    base, api, project = server
    items = api.get(f"/api/v1/projects/{project['id']}/items?order=id&limit=500").json()["items"]
    rotten = [i for i in items if i["silver_label"] == "rotten"]
    page = browser.new_page()
    login(page, base, "ada", PASSWORD)
    page.goto(f"{base}/projects/{project['id']}")
    page.click("#browse-items")
    expect(page.locator("tr.item-row")).to_have_count(len(items))
    page.select_option("select[name=silver_label]", "rotten")
    page.select_option("select[name=dataset_kind]", "silver")
    page.click("#filters button[type=submit]")
    wanted = [i for i in rotten if i["dataset_kind"] == "silver"]
    expect(page.locator("#matches strong")).to_have_text(str(len(wanted)))
    expect(page.locator("tr.item-row")).to_have_count(len(wanted))
    for row in page.locator("tr.item-row").all():
        expect(row.locator("td").nth(4)).to_have_text("rotten")
    # a text search narrows to the one item
    target = wanted[0]
    page.fill("input[name=text]", target["external_id"])
    page.click("#filters button[type=submit]")
    expect(_row(page, target["id"])).to_be_visible()
    _row(page, target["id"]).get_by_role("link", name=target["external_id"]).click()
    expect(page).to_have_url(re.compile(rf"/items/{target['id']}$"))
    page.select_option("#relabel select[name=label]", "fresh")
    page.fill("#relabel input[name=note]", "praise, not a pan")
    page.click("#relabel button[type=submit]")
    expect(page.locator("#relabel-saved")).to_contain_text("fresh")
    last = page.locator("#history tr.event").last
    expect(last).to_contain_text("ada")
    expect(last).to_contain_text("praise, not a pan")
    detail = api.get(f"/api/v1/items/{target['id']}").json()
    assert detail["current_label"] == "fresh"
    # the browser shows the change
    page.goto(f"{base}/projects/{project['id']}/items?changed=true")
    expect(_row(page, target["id"]).locator("td.current")).to_contain_text("fresh")


def test_bulk_relabel_three_like_this_with_preview_and_group_undo(server, browser):
    base, api, project = server
    items = api.get(f"/api/v1/projects/{project['id']}/items?limit=10").json()["items"]
    source = next(i for i in items if len(api.get(f"/api/v1/items/{i['id']}/similar").json()) >= 3)
    similar = api.get(f"/api/v1/items/{source['id']}/similar").json()[:3]
    chosen = [s["item"] for s in similar]
    before = {i["id"]: (i["current_label"], i["status"]) for i in chosen}
    label = "fresh" if sum(i["current_label"] == "rotten" for i in chosen) >= 2 else "rotten"
    page = browser.new_page()
    login(page, base, "ada", PASSWORD)
    page.goto(f"{base}/items/{source['id']}")
    page.get_by_role("link", name="Items like this").click()
    expect(page.locator("#like-banner")).to_contain_text(source["external_id"])
    for item in chosen:
        _row(page, item["id"]).locator("input[type=checkbox]").check()
    page.select_option("#bulk-controls select[name=label]", label)
    page.click("#bulk-controls button[type=submit]")
    preview = page.locator("#preview tr.preview-row")
    expect(preview).to_have_count(3)
    for item in chosen:
        expect(page.locator("#preview")).to_contain_text(item["external_id"])
    changing = sum(before[i["id"]] != (label, "reviewed") for i in chosen)
    # nothing is written by the preview
    for item in chosen:
        now = api.get(f"/api/v1/items/{item['id']}").json()
        assert (now["current_label"], now["status"]) == before[item["id"]]
    page.click("#confirm button[type=submit]")
    expect(page.locator("#bulk-result")).to_contain_text(f"Set {changing} item")
    for item in chosen:
        now = api.get(f"/api/v1/items/{item['id']}").json()
        assert (now["current_label"], now["status"]) == (label, "reviewed")
        assert now["history"][-1]["source"] == "bulk"
    page.click("#undo-group button[type=submit]")
    expect(page.locator("#bulk-result")).to_contain_text("Undone")
    for item in chosen:
        now = api.get(f"/api/v1/items/{item['id']}").json()
        assert (now["current_label"], now["status"]) == before[item["id"]]
    page.click("text=Back to the items")
    expect(page.locator("#like-banner")).to_be_visible()
