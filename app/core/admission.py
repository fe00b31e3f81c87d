"""Admission control: at most ``ASSAY_MAX_CONCURRENT_REQUESTS`` requests inside the app at once;
the rest wait their turn on the event loop.

Why: a sync route's request keeps its database connection between thread-pool hops (each sync
dependency and the route itself run as separate hops). With more requests in flight than the
pool has connections, threads block waiting for a connection while the requests holding the
connections wait for a thread, and nothing moves until the pool times out (500s under load).
A request waiting here holds neither a thread nor a connection.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send


class AdmissionLimit:
    """Pure ASGI middleware (no buffering, so streamed exports pass through unchanged)."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(limit)

    def slots(self) -> asyncio.Semaphore:
        """One semaphore per event loop (a test client may serve the same app from several)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._slots = loop, asyncio.Semaphore(self.limit)
        return self._slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with self.slots():
            await self.app(scope, receive, send)
