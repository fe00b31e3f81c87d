"""The item page in headless Chromium, against a real `assay serve` and its worker: after a
training job and a correction of one of an item's supporters, the evidence entry shows the
label the model was trained on and the label now with who changed it; the panel has one name
and one line per list, the influence is in words with its number on hover, and the raw scores
sit on a closed details fold."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser import login, trained_demo_server
from tests.support import assay_env

pytestmark = pytest.mark.browser
PASSWORD = "evidence-that-tells"


def test_corrected_supporter_shows_both_labels_on_the_item_page(tmp_path, browser):
    from app.core.auth import create_user, issue_token
    from app.core.db import migrate, session_scope
    from app.models import Role

    with assay_env(tmp_path):
        migrate()
        with session_scope() as session:
            token = issue_token(session, create_user(session, "ada", PASSWORD, Role.admin), "t")
        with trained_demo_server(tmp_path, token, {"silver": 30, "gold_dev": 10}) as (
            base,
            api,
            project,
        ):
            target = api.get(f"/api/v1/projects/{project['id']}/items?limit=1").json()["items"][0]
            detail = api.get(f"/api/v1/items/{target['id']}").json()
            supporter = next(e for e in detail["evidence"] if e["role"] == "supporter")
            trained = supporter["train_label"]
            corrected = "fresh" if trained == "rotten" else "rotten"
            response = api.post(
                f"/api/v1/items/{supporter['item_id']}/label",
                json={"label": corrected, "idempotency_key": uuid.uuid4().hex},
            )
            assert response.status_code == 200, response.text

            page = browser.new_page()
            login(page, base, "ada", PASSWORD)
            page.goto(f"{base}/items/{target['id']}")
            panel = page.locator("#evidence")
            expect(panel.locator("h2")).to_have_text("Why the model thinks so")
            expect(panel.locator("h3")).to_have_text(
                ["Supporters", "Opposers", "Suggestion's reasons"]
            )
            entry = panel.locator(
                f".evidence-item[data-role=supporter][data-item-id='{supporter['item_id']}']"
            )
            expect(entry.locator(".trained .tag")).to_have_text(trained)
            expect(entry.locator(".changed .tag")).to_have_text(corrected)
            expect(entry.locator(".changed .who")).to_have_text("ada")
            expect(entry.locator(".changed time")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d "))
            expect(entry.locator(".source")).to_have_text("silver")
            effect = entry.locator(".effect small")
            label = target["current_label"]
            words = rf"^removing it would raise this item's loss of '{label}' by \d+\.\d+$"
            expect(effect).to_have_text(re.compile(words))
            expect(effect).to_have_attribute("title", re.compile(r"^influence \+\d"))
            # an unchanged entry shows one label only
            others = panel.locator(".evidence-item").filter(has_not=page.locator(".changed"))
            expect(others.first.locator(".trained .tag")).to_be_visible()
            # raw metric keys only behind the closed fold
            fold = page.locator("details.internals")
            expect(fold).not_to_have_attribute("open", re.compile(".*"))
            expect(page.get_by_text("self_influence", exact=True)).not_to_be_visible()
            fold.locator("summary").click()
            expect(page.get_by_text("self_influence", exact=True)).to_be_visible()
