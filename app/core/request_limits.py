"""Size limits on request bodies, enforced before any route (or form parser) sees a byte.

FastAPI parses a body before the route's dependencies run, and python-multipart spools file
parts over 1 MiB to disk; so without this an anonymous request could make the server write
hundreds of MiB before answering 401. Each request gets the cap of its kind of route:

- the dataset upload routes stream their own multipart body (``app.api.uploads``) after
  authenticating, so here only a declared Content-Length over the cap is refused;
- every other body (JSON, page forms) is read here, counting bytes whether or not a
  Content-Length was sent, refused with 413 past its cap, and replayed to the app. JSON is
  parsed strictly once (``app.strict_json``): duplicate keys, lone surrogates and deep
  nesting are a 422 for every route in one place.
"""

from __future__ import annotations

import email.message
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette._utils import get_route_path
from starlette.datastructures import Headers

from app.core.config import Settings
from app.core.strict_json import JsonRefused, loads
from app.core.text import excerpt, size_text

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UPLOAD_PATHS = re.compile(r"^(/api/v1)?/projects/[^/]+/datasets/?$")
URLENCODED = "application/x-www-form-urlencoded"
FORM_TYPES = (URLENCODED, "multipart/form-data")
SINGLE_HEADERS = ("content-type", "content-length")


def is_upload(scope: Scope) -> bool:
    """The two dataset upload routes (API and page), which stream their bodies themselves.
    Matched on the route path (``root_path`` removed, as Starlette's router does), so behind
    ``--root-path`` an upload is still an upload, not a page form."""
    return scope["method"] == "POST" and UPLOAD_PATHS.match(get_route_path(scope)) is not None


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses this body as JSON, by its own rule (fastapi/routing.py, with the
    default strict_content_type): an ``application/json`` or ``application/*+json`` media type;
    no Content-Type at all is not JSON. Checking exactly these keeps the strict parse from
    missing a body FastAPI reads, or refusing one it does not."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class RequestLimits:
    """Pure ASGI middleware (no BaseHTTPMiddleware: bodies must stream through untouched)."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app, self.settings = app, settings

    def cap(self, scope: Scope, content_type: str) -> int:
        """The most body bytes this request may send: the upload cap (file plus form framing)
        on the upload routes, the form cap for page forms, else the JSON cap (any other body
        is small too: no route takes a large one)."""
        settings = self.settings
        if is_upload(scope):
            return settings.max_upload_bytes + settings.upload_form_overhead_bytes
        if _media(content_type) in FORM_TYPES:
            return settings.max_form_body_bytes
        return settings.max_json_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Read as Starlette and FastAPI do (the first of a repeated header), and refuse a
        # repeated Content-Type or Content-Length: checked here by one value, parsed by the
        # app by another, the strict JSON check or the cap could be bypassed.
        headers = Headers(scope=scope)
        for name in SINGLE_HEADERS:
            if len(headers.getlist(name)) > 1:
                await _refuse(send, 400, f"{name}: send this header once, not several times")
                return
        content_type = headers.get("content-type", "")
        cap = self.cap(scope, content_type)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            await _refuse(send, 413, f"request body is larger than {size_text(cap)}")
            return
        if is_upload(scope):
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
        elif body and _media(content_type) == URLENCODED:
            refused = _undecodable_field(bytes(body))
        else:
            refused = None
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


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _undecodable_field(body: bytes) -> list[dict[str, Any]] | None:
    """The first form field whose name or value is not UTF-8 once percent-decoded. Starlette
    decodes them with replacement, so ``%ED%A0%80`` (a lone surrogate's bytes) would be stored
    as U+FFFD where the API refuses the same text."""
    for pair in body.split(b"&"):
        name, _, value = pair.partition(b"=")
        raw_name = unquote_to_bytes(name.replace(b"+", b" "))
        try:
            raw_name.decode("utf-8")
            unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            field = excerpt(raw_name.decode("utf-8", "replace"), 80)
            return [{"loc": ["body", field], "msg": "not valid UTF-8", "type": "value_error"}]
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
