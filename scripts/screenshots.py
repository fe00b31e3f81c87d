"""Screenshots of the real pages on the real demo data, for the README.

Sets up `assay demo` in a fresh data directory (import, train and score on a worker), serves
it, reviews a few queue items as an annotator would (the truth known to the demo), lets the
retraining policy make a second model version, and captures the queue, an item page, the
data browser, the project page and the dashboard with headless Chromium (/usr/bin/chromium).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--keep DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a file: the tests' browser helpers live in the repo

import httpx  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.browser import launch_chromium, login, running_server  # noqa: E402
from tests.support import assay_env, wait_until  # noqa: E402

USER, PASSWORD = "reviewer-ada", "screenshots-only"
REVIEWED = 6
VIEWPORT = {"width": 1280, "height": 900}
JOB_TIMEOUT_S = 900


def set_up(data_dir: Path) -> tuple[int, str]:
    """The demo project (trained), an admin to log in with and an API token; returns both."""
    subprocess.run([sys.executable, "-m", "app.cli", "demo", "--no-serve"], check=True)
    from sqlalchemy import select

    from app.cli.demo import PROJECT_NAME
    from app.core.auth import create_user, issue_token
    from app.core.db import session_scope
    from app.models import Project, Role

    with session_scope() as session:
        project_id = session.scalar(select(Project.id).where(Project.name == PROJECT_NAME))
        token = issue_token(session, create_user(session, USER, PASSWORD, Role.admin), "shots")
    return project_id, token


def review(page, api: httpx.Client, base: str, project_id: int) -> int:
    """Label the queue's first items with their known truth; returns the last corrected one."""
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import Item

    labels = api.get(f"/api/v1/projects/{project_id}").json()["labels"]
    page.goto(f"{base}/projects/{project_id}/queue")
    corrected = None
    for _ in range(REVIEWED):
        card = page.locator("article.item")
        item_id = int(card.get_attribute("data-item-id"))
        with session_scope() as session:
            item = session.scalar(select(Item).where(Item.id == item_id))
            truth, current = item.reference_label or item.current_label, item.current_label
        if truth != current:
            corrected = item_id
        page.keyboard.press(str(labels.index(truth) + 1))
        page.keyboard.press("Enter")
        expect(card).not_to_have_attribute("data-item-id", str(item_id))
    return corrected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--keep", type=Path, help="data directory to use and keep")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.keep or Path(tmp)
        with assay_env(data_dir):
            project_id, token = set_up(data_dir)
            with (
                running_server(data_dir) as base,
                httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api,
                sync_playwright() as playwright,
            ):
                api.patch(f"/api/v1/projects/{project_id}", json={"retrain_every": 3})
                browser = launch_chromium(playwright)
                page = browser.new_page(viewport=VIEWPORT)
                login(page, base, USER, PASSWORD)
                corrected = review(page, api, base, project_id)
                wait_until(
                    lambda: (
                        len(api.get(f"/api/v1/projects/{project_id}/model-versions").json()) >= 2
                    ),
                    JOB_TIMEOUT_S,
                    interval=2,
                    what="the retrained model version",
                )
                shots = {
                    "queue": f"/projects/{project_id}/queue",
                    "item": f"/items/{corrected}" if corrected else None,
                    "browser": f"/projects/{project_id}/items?dataset_kind=extension",
                    "project": f"/projects/{project_id}",
                    "dashboard": f"/projects/{project_id}/dashboard",
                }
                for name, path in shots.items():
                    if path is None:
                        continue
                    if page.goto(base + path).status != 200:
                        print(f"skipped {name}: {path} answered {page.goto(base + path).status}")
                        continue
                    page.wait_for_load_state("networkidle")
                    target = args.out / f"{name}.png"
                    page.screenshot(path=str(target), full_page=name not in ("queue", "browser"))
                    print(target)
                browser.close()


if __name__ == "__main__":
    main()
