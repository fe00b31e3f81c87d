"""Real pages in headless Chromium against a real `assay serve` (with its embedded worker)."""

from __future__ import annotations

import os
import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import login as browser_login
from tests.browser import trained_demo_server
from tests.seeding import add_members
from tests.support import assay_env, wait_until

pytestmark = pytest.mark.browser
PASSWORD = "annotate-all-day"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`assay serve` on a free port, with a trained, scored project."""
    from app.core.auth import create_user, issue_token
    from app.core.db import migrate, session_scope
    from app.models import Role

    data_dir = tmp_path_factory.mktemp("browser")
    with assay_env(data_dir):
        migrate()
        with session_scope() as session:
            create_user(session, "anna", PASSWORD, Role.annotator)
            token = issue_token(session, create_user(session, "ada", PASSWORD, Role.admin), "t")
        with trained_demo_server(data_dir, token, {"silver": 80, "gold_dev": 40}) as (
            base,
            api,
            project,
        ):
            add_members(project["id"], "anna")
            yield {"base": base, "project": project, "api": api}
        # The embedded worker must not outlive its server.
        worker_pid = int(
            re.search(r"worker started \(pid (\d+)", (data_dir / "server.log").read_text())[1]
        )
        wait_until(lambda: not _alive(worker_pid), 30, what="the worker to exit")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited already
        return stat.read().split()[2] != "Z"


def login(page, base: str, username: str) -> None:
    browser_login(page, base, username, PASSWORD)


def test_correct_an_item_with_the_keyboard_and_see_it_in_its_history(server, browser):
    page = browser.new_page()
    login(page, server["base"], "anna")
    page.goto(f"{server['base']}/projects/{server['project']['id']}/queue")
    card = page.locator("article.item")
    expect(card).to_be_visible()
    item_id = card.get_attribute("data-item-id")
    silver = page.locator(".tag.silver").inner_text().strip()
    labels = server["project"]["labels"]
    corrected = labels[1 - labels.index(silver)]
    expect(page.locator(".evidence").first.locator("li")).to_have_count(3)

    page.keyboard.press(str(labels.index(corrected) + 1))
    expect(page.locator(f"input[name=label][value={corrected}]")).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator("article.item")).not_to_have_attribute("data-item-id", item_id)

    page.goto(f"{server['base']}/items/{item_id}")
    event = page.locator("#history tr.event")
    expect(event).to_have_count(1)
    expect(event).to_contain_text("anna")
    expect(event).to_contain_text(re.compile(rf"{silver}\s*{corrected}"))
    detail = server["api"].get(f"/api/v1/items/{item_id}").json()
    assert detail["gold_label"] == corrected and detail["status"] == "reviewed"
    page.close()


def test_skip_moves_on_without_labelling(server, browser):
    page = browser.new_page()
    login(page, server["base"], "anna")
    page.goto(f"{server['base']}/projects/{server['project']['id']}/queue")
    item_id = page.locator("article.item").get_attribute("data-item-id")
    page.keyboard.press("s")
    expect(page.locator("article.item")).not_to_have_attribute("data-item-id", item_id)
    assert server["api"].get(f"/api/v1/items/{item_id}").json()["status"] == "pending"
    page.close()


def test_admin_starts_a_job_and_watches_its_progress_bar(server, browser):
    page = browser.new_page()
    login(page, server["base"], "ada")
    page.goto(f"{server['base']}/projects/{server['project']['id']}")
    jobs = page.locator("#jobs .job")
    before = jobs.count()
    page.click("text=Train and score")
    expect(jobs).to_have_count(before + 1)  # the new job is inserted first; pin it by its id
    job = page.locator(f"#{jobs.first.get_attribute('id')}")
    expect(job.locator("progress")).to_be_visible()
    expect(job).to_have_attribute("data-state", "succeeded", timeout=300_000)
    expect(job.locator("progress")).to_have_attribute("value", "1.0")
    page.close()


def test_pages_need_a_login(server, browser):
    page = browser.new_page()
    page.goto(f"{server['base']}/projects/{server['project']['id']}/queue")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.close()


def _anna_token() -> str:
    """An API token for anna, so the test can label as her without the queue page."""
    from sqlalchemy import select

    from app.core.auth import issue_token
    from app.core.db import session_scope
    from app.models import User

    with session_scope() as session:
        anna = session.scalar(select(User).where(User.username == "anna"))
        return issue_token(session, anna, "browser test")


def test_export_downloaded_from_the_project_page_holds_the_correction(server, browser):
    import csv
    from datetime import datetime

    project = server["project"]
    item = httpx.post(  # anna decides the item her queue hands her
        f"{server['base']}/api/v1/projects/{project['id']}/queue/next",
        headers={"Authorization": f"Bearer {_anna_token()}"},
    ).json()
    corrected = "rotten" if item["current_label"] == "fresh" else "fresh"
    decision = httpx.post(
        f"{server['base']}/api/v1/items/{item['id']}/label",
        headers={"Authorization": f"Bearer {_anna_token()}"},
        json={"label": corrected, "idempotency_key": f"export-{item['id']}"},
    )
    assert decision.status_code == 200, decision.text
    when = decision.json()["history"][-1]["created_at"]

    page = browser.new_page()
    login(page, server["base"], "ada")
    page.goto(f"{server['base']}/projects/{project['id']}")
    # the default ranking policy says what it served and the figures it decided on
    served = page.locator("#ranking-served").inner_text()
    pattern = (
        r"It served (exact_head|cleanlab|cleanlab_finetuned): "
        r"refitting without the \d+% of items cleanlab"
    )
    match = re.match(pattern, served)
    assert match, served
    # where cleanlab on the frozen vectors was served, the page says what fine-tuning would cost
    hint = page.locator("#finetune-hint")
    if match.group(1) == "cleanlab":
        assert re.search(r"ASSAY_FINETUNE=on.*(under a minute|about \d+ min)", hint.inner_text())
    else:
        assert hint.count() == 0
    with page.expect_download() as download:
        page.locator("#admin-links").get_by_text("CSV", exact=True).click()
    assert download.value.suggested_filename == f"assay-project-{project['id']}.csv"
    with open(download.value.path(), newline="", encoding="utf-8") as handle:
        rows = {int(r["id"]): r for r in csv.DictReader(handle)}
    assert len(rows) == 120  # 80 silver and 40 dev items
    row = rows[item["id"]]
    assert row["silver_label"] == item["silver_label"] and row["final_label"] == corrected
    assert row["status"] == "reviewed" and row["decided_by"] == "anna"
    assert datetime.fromisoformat(row["decided_at"]) == datetime.fromisoformat(when)
    assert row["model_version"] == str(item["model_version"]) and row["estimator"] == "noise_check"
    assert int(row["suspicion_rank"]) == item["suspicion_rank"]
    assert float(row["score_dev_influence"]) == pytest.approx(item["scores"]["dev_influence"])
    page.close()


def test_admin_adds_an_annotator_gives_a_token_then_revokes_and_deactivates(server, browser):
    base = server["base"]
    page = browser.new_page()
    login(page, base, "ada")
    page.click("header >> text=Users")
    new_user = page.locator("form[action='/admin/users']")
    new_user.locator("input[name=username]").fill("carol")
    new_user.locator("input[name=password]").fill(PASSWORD)
    new_user.locator("button[type=submit]").click()
    carol = page.locator("tr[data-username=carol]")
    expect(carol.locator(".status")).to_have_text("active")

    page.click("header >> text=API tokens")
    form = page.locator("form[action='/admin/tokens']")
    form.locator("select[name=user_id]").select_option(label="carol (annotator)")
    form.locator("input[name=name]").fill("labelling script")
    form.locator("button[type=submit]").click()
    token = page.locator("#new-token code.token").inner_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{base}/api/v1/projects", headers=headers).status_code == 200
    page.goto(f"{base}/admin/tokens")
    expect(page.locator("#new-token")).to_have_count(0)  # shown once
    row = page.locator("#tokens tr", has_text="labelling script")
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#tokens")).not_to_contain_text("labelling script")
    assert httpx.get(f"{base}/api/v1/projects", headers=headers).status_code == 401

    page.goto(f"{base}/admin/users")
    page.locator("tr[data-username=carol]").get_by_role("button", name="Deactivate").click()
    expect(page.locator("tr[data-username=carol] .status")).to_have_text("deactivated")
    other = browser.new_page()
    other.goto(f"{base}/login")
    other.fill("input[name=username]", "carol")
    other.fill("input[name=password]", PASSWORD)
    other.click("button[type=submit]")
    expect(other.locator(".error")).to_contain_text("Wrong username or password")
    other.close()
    page.close()
