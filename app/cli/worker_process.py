"""Starting a real Celery worker process beside the web server (embedded mode, demo, tests)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

from app.core.config import REPO_ROOT, get_settings


def worker_command(
    *,
    concurrency: int = 1,
    pool: str = "solo",
    queues: str | None = None,
    loglevel: str = "INFO",
    hostname: str | None = None,
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        "worker",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
    ]
    if queues is None:  # both queues: one worker does everything (embedded mode, the demo)
        settings = get_settings()
        queues = f"{settings.heavy_queue},{settings.light_queue}"
    command.append(f"--queues={queues}")
    if hostname:  # several workers on one machine need distinct node names
        command.append(f"--hostname={hostname}")
    return command


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM when the process that started it dies, however it dies."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_worker(
    log_file: Path | None = None, env: dict[str, str] | None = None, **options
) -> subprocess.Popen:
    """A worker child process with this process's settings (they travel in the environment)."""
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 (child owns it)
    return subprocess.Popen(
        worker_command(**options),
        cwd=REPO_ROOT,
        env={**os.environ, "ASSAY_DATA_DIR": str(get_settings().data_dir), **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )


def stop_worker(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """Warm shutdown (SIGTERM lets the current task finish its write), then kill."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
