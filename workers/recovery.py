"""Worker side of recovery: reap jobs left by dead workers when this worker starts, then on a
timer (see ``app/services/job_reaper.py`` for why there and not in Celery beat)."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init, worker_ready, worker_shutdown

from app.services.job_reaper import start_reaper

_stop: list[Any] = []


@worker_ready.connect
def _start_reaper(**_: Any) -> None:
    _stop.append(start_reaper())


@worker_shutdown.connect
def _stop_reaper(**_: Any) -> None:
    for stop in _stop:
        stop()


@worker_process_init.connect
def _own_connections(**_: Any) -> None:
    """A prefork child forked after the reaper ran must not share the parent's pooled
    connections: drop them from the child's pool without closing the parent's sockets."""
    from app.core.db import get_engine

    get_engine().dispose(close=False)
