"""The learning-to-rank workflow in headless Chromium, end to end against `assay serve` and its
embedded worker: an admin creates a ranking project on the page, uploads MSLR judgments (3
training queries, a few grades wrong) and 2 gold dev queries through the upload form and
trains from the page; an annotator regrades three judgments in the queue with the number keys
(the key is the grade) and Enter; the svmlight export holds the new grades and the provenance
CSV says who changed each.

With RANKING_QUEUE_SCREENSHOT=PATH set, the queue's first judgment (its query's documents
beside it) is also saved there at 1280 px wide: that is how docs/ranking_queue.png is made
(`RANKING_QUEUE_SCREENSHOT=docs/ranking_queue.png pytest -q tests/test_ranking_browser.py`).
"""

from __future__ import annotations

import csv
import io
import os

import pytest
from playwright.sync_api import expect

from app.cli.demo_ranking import flipped
from tests.browser import desktop_page, login, project_trained_on_page, served_team
from tests.test_score_ranking_cli import queries

pytestmark = pytest.mark.browser
PASSWORD = "grades-by-keyboard"
TRAIN_TIMEOUT_MS = 300_000


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A served, empty instance with an admin and an annotator; the svmlight files to upload."""
    data_dir = tmp_path_factory.mktemp("ranking-flow")
    train = queries("train", 3)
    for i in range(0, len(train), 25):
        train[i] = flipped(train[i])
    (data_dir / "train.svmlight").write_text("".join(train))
    (data_dir / "dev.svmlight").write_text("".join(queries("test", 2)))
    with served_team(data_dir, PASSWORD) as base:
        yield {"base": base, "dir": data_dir, "train": train}


def _grade(page) -> str | None:
    checked = page.locator('#decision input[name="label"]:checked')
    return checked.get_attribute("value") if checked.count() else None


def test_ranking_upload_train_regrade_by_keyboard_and_export(site, browser):
    base = site["base"]
    admin = desktop_page(browser)
    login(admin, base, "ada", PASSWORD)
    pid = project_trained_on_page(
        admin,
        base,
        name="Web search",
        kind="ranking",
        labels="0, 1, 2, 3, 4",
        uploads=[
            (site["dir"] / "train.svmlight", "silver"),
            (site["dir"] / "dev.svmlight", "gold_dev"),
        ],
        member="nora",
        timeout_ms=TRAIN_TIMEOUT_MS,
    )

    nora = desktop_page(browser)
    login(nora, base, "nora", PASSWORD)
    nora.goto(f"{base}/projects/{pid}/queue")
    expect(nora.locator(".query-rank")).to_contain_text("the model ranks it")
    expect(nora.locator("table.query-documents tr.current")).to_have_count(1)
    if os.environ.get("RANKING_QUEUE_SCREENSHOT"):
        nora.screenshot(path=os.environ["RANKING_QUEUE_SCREENSHOT"], full_page=True)
    regraded: dict[str, str] = {}
    article = nora.locator("article.item")
    for _ in range(3):
        item_id = article.get_attribute("data-item-id")
        silver = nora.locator(".tag.silver").inner_text().strip()
        new = "0" if silver != "0" else "3"
        nora.keyboard.press(new)  # the key is the grade, 0 included
        assert _grade(nora) == new
        nora.keyboard.press("Enter")
        expect(article).not_to_have_attribute("data-item-id", item_id)
        regraded[item_id] = new

    svmlight = admin.request.get(f"{base}/projects/{pid}/export?format=svmlight")
    provenance = admin.request.get(f"{base}/projects/{pid}/export?format=csv")
    assert svmlight.ok and provenance.ok
    lines = svmlight.text().splitlines()
    rows = list(csv.DictReader(io.StringIO(provenance.text())))
    assert len(lines) == len(rows) == len(site["train"]) + len(queries("test", 2))
    for line, row in zip(lines, rows, strict=True):
        assert line.split()[0] == row["grade"]
        assert line.split()[1] == f"qid:{row['query']}"
        if row["id"] in regraded:
            assert row["grade"] == regraded[row["id"]]
            assert (row["decided_by"], row["source"], row["changed"]) == (
                "nora",
                "annotator",
                "true",
            )
        else:
            assert row["changed"] == "false"
    assert [_features(line) for line in lines[: len(site["train"])]] == [
        _features(line) for line in site["train"]
    ]


def _features(line: str) -> dict[int, float]:
    """A line's features as numbers (the export writes 0.75000 as 0.75)."""
    cells = line.split("#")[0].split()[2:]
    return {int(i): float(v) for i, v in (cell.split(":") for cell in cells)}
