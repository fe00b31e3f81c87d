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


@contextmanager
def running_server(data_dir: Path, startup_s: float = 60) -> Iterator[str]:
    """`assay serve` (web and its embedded worker) with this process's ASSAY_* settings;
    yields the base URL and stops both afterwards. The log is ``data_dir/server.log``."""
    port = free_port()
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
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
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def login(page, base: str, username: str, password: str) -> None:
    """Through the login form, as a person would; waits for the header to name the user."""
    from playwright.sync_api import expect

    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_contain_text(username)
