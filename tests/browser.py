"""Driving real pages: `assay serve` in a child process and Debian's headless Chromium.

Shared by the browser tests and `scripts/screenshots.py`; never `playwright install`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support import assay_env, free_port, upload_demo_project, wait_until

CHROMIUM = os.environ.get("ASSAY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def is_up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/login", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start_server(data_dir: Path, port: int, *args: str, startup_s: float = 60) -> subprocess.Popen:
    """`assay serve --port PORT ARGS` with this process's ASSAY_* settings, once it answers.
    Its output is appended to ``data_dir/server.log``."""
    with open(data_dir / "server.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(
                f"the server exited:\n{(data_dir / 'server.log').read_text()[-3000:]}"
            )
        return is_up(base)

    try:
        wait_until(up, startup_s, what="the server")
    except BaseException:
        process.kill()
        process.wait(timeout=30)
        raise
    return process


@contextmanager
def running_server(data_dir: Path, *args: str, startup_s: float = 60) -> Iterator[str]:
    """`assay serve ARGS` (web and, when embedded or with ``--worker``, a worker) with this
    process's ASSAY_* settings; yields the base URL and stops both afterwards. The log is
    ``data_dir/server.log``."""
    port = free_port()
    process = start_server(data_dir, port, *args, startup_s=startup_s)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def served_team(data_dir: Path, password: str) -> Iterator[str]:
    """An empty, migrated instance with an admin (``ada``) and an annotator (``nora``), both
    with ``password``, served by `assay serve` (embedded worker); yields the base URL."""
    from app.core.auth import create_user
    from app.core.db import migrate, session_scope
    from app.models import Role

    with assay_env(data_dir):
        migrate()
        with session_scope() as session:
            create_user(session, "ada", password, Role.admin)
            create_user(session, "nora", password, Role.annotator)
        with running_server(data_dir) as base:
            yield base


def desktop_page(browser):
    """A page in a fresh context at 1280 x 900 (one user's session)."""
    return browser.new_context(viewport={"width": 1280, "height": 900}).new_page()


@contextmanager
def trained_demo_server(
    data_dir: Path, token: str, sizes: dict[str, int]
) -> Iterator[tuple[str, httpx.Client, dict]]:
    """``running_server`` with a project 'Reviews' (fresh/rotten) of demo rows, ``{kind: rows}``
    as in ``upload_demo_project``, that the embedded worker has trained. Yields the base URL, an
    API client with ``token`` and the project. The browser tests that need a model's
    suggestions and evidence on the page start here, so setting up and waiting out the training
    is written once."""
    with (
        running_server(data_dir) as base,
        httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as api,
    ):
        project_id = upload_demo_project(api, {}, "Reviews", sizes)
        job = api.post(f"/api/v1/projects/{project_id}/jobs", json={}).json()
        wait_until(
            lambda: api.get(f"/api/v1/jobs/{job['id']}").json()["state"] in ("succeeded", "failed"),
            300,
            what="training",
        )
        assert api.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "succeeded", (
            data_dir / "worker.log"
        ).read_text()[-3000:]
        yield base, api, api.get(f"/api/v1/projects/{project_id}").json()


def login(page, base: str, username: str, password: str) -> None:
    """Through the login form, as a person would; waits for the header to name the user."""
    from playwright.sync_api import expect

    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_contain_text(username)


def project_trained_on_page(
    page,
    base: str,
    *,
    name: str,
    kind: str,
    labels: str,
    uploads: list[tuple[Path, str]],
    member: str,
    timeout_ms: int,
) -> int:
    """As an admin would on the pages: create a project of ``kind``, upload each (file,
    dataset kind), add ``member``, train and score, wait for the job; returns its id."""
    from playwright.sync_api import expect

    page.fill("input[name=name]", name)
    page.select_option("select[name=task_kind]", kind)
    page.fill("input[name=labels]", labels)
    page.click("form[action='/projects'] button[type=submit]")
    expect(page.locator("h1")).to_have_text(name)
    project_id = int(page.url.rstrip("/").split("/")[-1])
    for path, dataset_kind in uploads:
        page.set_input_files("input[name=file]", str(path))
        page.select_option("select[name=kind]", dataset_kind)
        page.click("form[enctype='multipart/form-data'] button[type=submit]")
        expect(page.get_by_role("cell", name=path.name, exact=True)).to_be_visible()
    page.fill("#members input[name=username]", member)
    page.click("#members button[type=submit]")
    expect(page.locator("#members")).to_contain_text(member)
    page.get_by_role("button", name="Train and score").click()
    expect(page.locator("#jobs .job").first).to_have_attribute(
        "data-state", "succeeded", timeout=timeout_ms
    )
    return project_id
