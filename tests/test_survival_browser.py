"""The survival workflow in headless Chromium, end to end against `assay serve` and its
embedded worker: an admin creates a survival project on the page (labels: gbsg2's duration and
event columns), uploads 80 silver records and 40 gold dev records through the upload form and
trains from the page; an annotator corrects three records in the queue with the keyboard (the
event indicator with 0/1, the duration after D, a refused duration fixed); the CSV export holds
each correction in the mapped columns and says who made it.

With SURVIVAL_QUEUE_SCREENSHOT=PATH set, the queue's first record (its covariates, risk,
expected events and evidence) is also saved there at 1280 px wide: that is how
docs/survival_queue.png is made
(`SURVIVAL_QUEUE_SCREENSHOT=docs/survival_queue.png pytest -q tests/test_survival_browser.py`).
"""

from __future__ import annotations

import csv
import io
import os

import pytest
from playwright.sync_api import expect

from tests.browser import desktop_page, login, project_trained_on_page, served_team
from tests.test_survival_project import gbsg2_csv

pytestmark = pytest.mark.browser
PASSWORD = "follow-up-by-keyboard"
TRAIN_TIMEOUT_MS = 300_000


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A served, empty instance with an admin and an annotator; the CSV files to upload."""
    data_dir = tmp_path_factory.mktemp("survival-flow")
    (data_dir / "silver.csv").write_bytes(gbsg2_csv(0, 80))
    (data_dir / "dev.csv").write_bytes(gbsg2_csv(80, 120))
    with served_team(data_dir, PASSWORD) as base:
        yield {"base": base, "dir": data_dir}


def _event_value(page, event: str) -> str:
    return page.locator(f'#decision input[name="label"][data-event="{event}"]').get_attribute(
        "value"
    )


def _recorded(page) -> tuple[str, str]:
    """The record's duration (the field's) and the event its silver annotation has."""
    duration = page.locator("#decision [data-duration]").input_value()
    silver = page.locator(".survival-model dd.silver").inner_text()
    return duration, "1" if silver.startswith("event") else "0"


def _confirm(page, item_id: str) -> str:
    article = page.locator("article.item")
    expect(article).not_to_have_attribute("data-item-id", item_id)
    return article.get_attribute("data-item-id")


def test_survival_upload_train_correct_by_keyboard_and_export(site, browser):
    base = site["base"]
    admin = desktop_page(browser)
    login(admin, base, "ada", PASSWORD)
    pid = project_trained_on_page(
        admin,
        base,
        name="Breast cancer follow-up",
        kind="survival",
        labels="time, cens",
        uploads=[
            (site["dir"] / "silver.csv", "silver"),
            (site["dir"] / "dev.csv", "gold_dev"),
        ],
        member="nora",
        timeout_ms=TRAIN_TIMEOUT_MS,
    )

    nora = desktop_page(browser)
    login(nora, base, "nora", PASSWORD)
    nora.goto(f"{base}/projects/{pid}/queue")
    expect(nora.locator(".survival-model dd.risk")).to_contain_text("higher than")
    expect(nora.locator("#evidence .evidence-item").first).to_be_visible()
    if os.environ.get("SURVIVAL_QUEUE_SCREENSHOT"):
        nora.screenshot(path=os.environ["SURVIVAL_QUEUE_SCREENSHOT"], full_page=True)
    item_id = nora.locator("article.item").get_attribute("data-item-id")
    fixes: dict[str, tuple[str, str]] = {}

    # 1. the event indicator flipped with its key (0 censored, 1 event), then Enter
    duration, event = _recorded(nora)
    flipped = "0" if event == "1" else "1"
    nora.keyboard.press(flipped)
    expect(nora.locator(f'#decision input[data-event="{flipped}"]')).to_be_checked()
    fixes[item_id] = (duration, flipped)
    nora.keyboard.press("Enter")
    item_id = _confirm(nora, item_id)

    # 2. an event at a corrected duration: 1, then D and the new duration, Enter in the field
    nora.keyboard.press("1")
    nora.keyboard.press("d")
    nora.keyboard.type("1500.50")
    assert _event_value(nora, "1") == "1500.50 1"
    fixes[item_id] = ("1500.5", "1")
    nora.keyboard.press("Enter")
    item_id = _confirm(nora, item_id)

    # 3. a negative duration is refused (the same record stays, saying why), then corrected
    nora.keyboard.press("0")
    nora.keyboard.press("d")
    nora.keyboard.type("-5")
    expect(nora.locator("#decision [data-duration-problem]")).to_be_visible()
    nora.keyboard.press("Enter")
    expect(nora.locator("#queue-item p.error")).to_contain_text("positive finite")
    assert nora.locator("article.item").get_attribute("data-item-id") == item_id
    nora.keyboard.press("0")
    nora.keyboard.press("d")
    nora.keyboard.type("730")
    fixes[item_id] = ("730", "0")
    nora.keyboard.press("Enter")
    _confirm(nora, item_id)

    export = admin.request.get(f"{base}/projects/{pid}/export?format=csv")
    assert export.ok
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(export.text()))}
    assert len(rows) == 120
    for fixed_id, (duration, event) in fixes.items():
        row = rows[fixed_id]
        assert (float(row["time"]), row["cens"]) == (float(duration), event), row
        assert row["decided_by"] == "nora" and row["status"] == "reviewed"
        assert row["changed"] == "true" and row["silver"] != f"{row['time']} {row['cens']}"
    untouched = [r for i, r in rows.items() if i not in fixes]
    assert all(r["source"] == "import" and r["changed"] == "false" for r in untouched)
