"""Size limits on request bodies, enforced before any route (or form parser) sees a byte.

FastAPI parses a body before the route's dependencies run, and python-multipart spools file
parts over 1 MiB to disk; so without this an anonymous request could make the server write
hundreds of MiB before answering 401. Each request gets the cap of its kind of route:

- the dataset upload routes stream their own multipart body (``app.services.uploads``) after
  authenticating, so here only a declared Content-Length over the cap is refused;
- every other body (JSON, page forms) is read here, counting bytes whether or not a
  Content-Length was sent, refused with 413 past its cap, and replayed to the app. JSON is
  parsed strictly once (``app.strict_json``): duplicate keys, lone surrogates and deep
  nesting are a 422 for every route in one place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from app.config import Settings
from app.strict_json import JsonRefused, loads

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UPLOAD_PATHS = re.compile(r"^(/api/v1)?/projects/[^/]+/datasets/?$")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def is_upload(method: str, path: str) -> bool:
    """The two dataset upload routes (API and page), which stream their bodies themselves."""
    return method == "POST" and UPLOAD_PATHS.match(path) is not None


def is_json(content_type: str) -> bool:
    """FastAPI reads a body as JSON when it says so, or says nothing."""
    media = content_type.split(";", 1)[0].strip().lower()
    return not media or media == "application/json" or media.endswith("+json")


def size_text(limit: int) -> str:
    mib, kib = 1 << 20, 1 << 10
    if limit >= mib and limit % mib == 0:
        return f"{limit // mib} MiB"
    if limit >= kib and limit % kib == 0:
        return f"{limit // kib} KiB"
    return f"{limit} bytes"


class RequestLimits:
    """Pure ASGI middleware (no BaseHTTPMiddleware: bodies must stream through untouched)."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app, self.settings = app, settings

    def cap(self, method: str, path: str, content_type: str) -> int:
        settings = self.settings
        if is_upload(method, path):
            return settings.max_upload_bytes + settings.upload_form_overhead_bytes
        if content_type.split(";", 1)[0].strip().lower() in FORM_TYPES:
            return settings.max_form_body_bytes
        return settings.max_json_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        content_type = headers.get("content-type", "")
        cap = self.cap(method, path, content_type)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            await _refuse(send, 413, f"request body is larger than {size_text(cap)}")
            return
        if is_upload(method, path):
            await self.app(scope, receive, send)  # the route counts what it streams
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            body += message.get("body", b"")
            if len(body) > cap:
                await _refuse(send, 413, f"request body is larger than {size_text(cap)}")
                return
            if not message.get("more_body", False):
                break
        if body and is_json(content_type):
            refused = self._strict_json(bytes(body))
            if refused is not None:
                await _refuse(send, 422, refused)
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    def _strict_json(self, body: bytes) -> list[dict[str, Any]] | None:
        """Validation issues for a body FastAPI would parse leniently; None to let it parse
        (bad syntax included: FastAPI names the position)."""
        try:
            loads(body, self.settings.max_json_depth)
        except JsonRefused as err:
            return [{"loc": ["body", *err.path], "msg": err.message, "type": "value_error"}]
        except ValueError:  # bad syntax or encoding: FastAPI's own 422 names the position
            return None
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, then the client's own messages (a disconnect while streaming)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Send, status: int, detail: Any) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
