"""One full round in headless Chromium against a real server and worker: upload, train, review
10 items, retraining by the project's policy, and a rescored queue with a second model version.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser import launch_chromium, login, running_server
from tests.seeding import add_members
from tests.support import assay_env, demo_rows, to_csv, wait_until

pytestmark = pytest.mark.browser
PASSWORD = "a-full-round-of-review"
SIZES = {"silver": 300, "gold_dev": 100, "test": 100}
REVIEWED = 10
JOB_TIMEOUT_MS = 300_000
COLUMNS = ("id", "text", "label", "reference_label")
# htmx's classes while a request or swap is under way (a locator: the pages' CSP forbids the
# eval that a wait_for_function expression needs)
HTMX_BUSY = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added"


def _files(tmp_path) -> dict[str, str]:
    """Real Rotten Tomatoes snippets: VADER's silver labels to check, gold dev and test."""
    paths, offset = {}, 0
    for kind, n in SIZES.items():
        rows = demo_rows(n, offset=offset, silver=kind == "silver")
        offset += n
        paths[kind] = tmp_path / f"{kind}.csv"
        paths[kind].write_bytes(to_csv(rows, COLUMNS))
    return paths


def _pending_order(api: httpx.Client, project_id: int) -> list[int]:
    items = api.get(f"/api/v1/projects/{project_id}/items?order=suspicion&limit=500").json()
    return [i["id"] for i in items["items"] if i["status"] == "pending"]


def _wait_for_job(page) -> None:
    job = page.locator("#jobs .job").first
    finished = re.compile("succeeded|failed")
    expect(job).to_have_attribute("data-state", finished, timeout=JOB_TIMEOUT_MS)
    expect(job).to_have_attribute("data-state", "succeeded")


def test_full_round_upload_train_review_retrain(tmp_path):
    from app.core.auth import create_user, issue_token
    from app.core.db import migrate, session_scope
    from app.models import Role

    files = _files(tmp_path)
    with assay_env(tmp_path / "data"):
        migrate()
        with session_scope() as session:
            create_user(session, "anna", PASSWORD, Role.annotator)
            token = issue_token(session, create_user(session, "ada", PASSWORD, Role.admin), "t")
        with (
            running_server(tmp_path / "data") as base,
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api,
            sync_playwright() as playwright,
        ):
            browser = launch_chromium(playwright)
            admin = browser.new_context().new_page()
            login(admin, base, "ada", PASSWORD)

            admin.fill("input[name=name]", "Full round")
            admin.fill("input[name=labels]", "fresh, rotten")
            admin.locator("form[action='/projects'] button[type=submit]").click()
            expect(admin).to_have_url(re.compile(r"/projects/\d+$"))
            project_id = int(admin.url.rsplit("/", 1)[1])
            add_members(project_id, "anna")
            for kind, path in files.items():
                upload = admin.locator(f"form[action='/projects/{project_id}/datasets']")
                upload.locator("input[type=file]").set_input_files(str(path))
                upload.locator("select[name=kind]").select_option(kind)
                upload.locator("button[type=submit]").click()
                expect(admin.locator("table").first).to_contain_text(path.name)
            admin.fill("input[name=retrain_every]", str(REVIEWED))
            admin.click("text=Save policy")
            expect(admin.locator("#model-versions .policy")).to_contain_text(
                f"after every {REVIEWED} corrections"
            )

            admin.click("text=Train and score")
            _wait_for_job(admin)
            admin.reload()
            expect(admin.locator("#model-versions tr.version")).to_have_count(1)
            before = _pending_order(api, project_id)
            assert len(before) == SIZES["silver"]

            annotator = browser.new_context().new_page()
            login(annotator, base, "anna", PASSWORD)
            annotator.goto(f"{base}/projects/{project_id}/queue")
            labels, reviewed = ["fresh", "rotten"], []
            for _ in range(REVIEWED):
                card = annotator.locator("article.item")
                item_id = card.get_attribute("data-item-id")
                current = api.get(f"/api/v1/items/{item_id}").json()["current_label"]
                corrected = labels[1 - labels.index(current)]  # every decision a correction
                annotator.keyboard.press(str(labels.index(corrected) + 1))
                expect(annotator.locator(f"input[name=label][value={corrected}]")).to_be_checked()
                annotator.keyboard.press("Enter")
                expect(card).not_to_have_attribute("data-item-id", item_id)
                # the new form is htmx's before Enter
                expect(annotator.locator(HTMX_BUSY)).to_have_count(0)
                reviewed.append(int(item_id))
            assert reviewed == before[:REVIEWED], "the queue served the most suspicious first"

            # the 10th correction started the retraining: the admin sees it run and finish
            admin.reload()
            expect(admin.locator("#jobs .job")).to_have_count(2)
            _wait_for_job(admin)
            wait_until(
                lambda: len(api.get(f"/api/v1/projects/{project_id}/model-versions").json()) == 2,
                60,
                what="the second model version",
            )
            admin.reload()
            rows = admin.locator("#model-versions tr.version")
            expect(rows).to_have_count(2)
            newest = rows.first
            expect(newest).to_have_attribute("data-version", "2")
            expect(newest.locator(".corrections")).to_have_text(str(REVIEWED))
            expect(newest.locator(".dev-f1")).to_have_text(re.compile(r"^0\.\d{3}$"))
            expect(newest.locator(".test-f1")).to_have_text(re.compile(r"^0\.\d{3}$"))
            expect(newest.locator(".queue-moved")).to_have_text(re.compile(r"^[1-9]\d* of 290$"))

            after = _pending_order(api, project_id)
            expected_before = [i for i in before if i not in reviewed]
            assert sorted(after) == sorted(expected_before)
            assert after != expected_before, "rescoring reordered the queue"
            versions = api.get(f"/api/v1/projects/{project_id}/model-versions").json()
            assert versions[0]["corrections"] == REVIEWED and versions[0]["queue_moved"] > 0

            # a corrected item's page: its correction, and what each model version said of it
            admin.goto(f"{base}/items/{reviewed[0]}")
            expect(admin.locator("#history tr.event .source")).to_have_text(["annotator"])
            rows = admin.locator("#versions tr.version")
            expect(rows).to_have_count(2)
            expect(rows.nth(0).locator("td").first).to_have_text("v1")
            expect(rows.nth(1).locator("td").first).to_have_text("v2")
            browser.close()
