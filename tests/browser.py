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

from tests.support import free_port, wait_until

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
def running_server(data_dir: Path, startup_s: float = 60) -> Iterator[str]:
    """`assay serve` (web and its embedded worker) with this process's ASSAY_* settings;
    yields the base URL and stops both afterwards. The log is ``data_dir/server.log``."""
    port = free_port()
    process = start_server(data_dir, port, startup_s=startup_s)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def login(page, base: str, username: str, password: str) -> None:
    """Through the login form, as a person would; waits for the header to name the user."""
    from playwright.sync_api import expect

    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_contain_text(username)
