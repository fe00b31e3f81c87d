"""Error pages in the site's style, for what a person opens in a browser.

A page request (not /api/, not a static file, not an htmx request) that ends in an HTTP error
gets templates/error.html: the site's header, the status, a one-line reason and a way on (home,
or log in). The API keeps its JSON bodies, and htmx requests keep them too: htmx swaps nothing on
a 4xx/5xx answer, so a full page there would only be bytes thrown away.

Crashes are answered by ``CrashPage``, an ASGI middleware inside the security headers'
(app.core.security_headers): Starlette's own 500 handler runs outside every user middleware, after
SecurityHeaders has already answered the crash, so a handler registered for 500 never runs.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import NamedTuple
from urllib.parse import quote

from fastapi.exception_handlers import http_exception_handler
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.auth import session_user
from app.core.db import new_session
from app.models import Role
from app.web.templating import render

log = logging.getLogger(__name__)
NOT_PAGES = ("/api/", "/static/", "/vendor/")  # JSON and files: no page around their errors
REASONS = {
    403: "Your role does not allow this page.",
    404: "There is no such page, or it is not shared with you.",
    405: "This address does not answer that kind of request.",
    500: "Something went wrong on our side; the error has been logged.",
}


class Viewer(NamedTuple):
    """Who the header names: plain values, so the page renders after the session closed."""

    username: str
    role: Role


def wants_page(scope: Scope) -> bool:
    """A browser opening a page, rather than the API, an asset or an htmx swap."""
    path: str = scope.get("path", "")
    return not path.startswith(NOT_PAGES) and "hx-request" not in Headers(scope=scope)


def viewer(request: Request) -> Viewer | None:
    """The logged-in user for the page's header; None when there is none or the database
    cannot say (the error page must render even then)."""
    try:
        db = new_session()
        try:
            user = session_user(request, db)
            return Viewer(user.username, user.role) if user else None
        finally:
            db.close()
    except SQLAlchemyError:
        return None


def error_page(
    request: Request,
    status_code: int,
    detail: object = None,
    headers: dict[str, str] | None = None,
    user: Viewer | None = None,
) -> Response:
    """The styled page for ``status_code``; ``detail`` (the route's message) shown when it is
    text and not just the status phrase again."""
    phrase = HTTPStatus(status_code).phrase
    shown = detail if isinstance(detail, str) and detail and detail != phrase else None
    # Without a user the page has no form (no log-out button): leave the session untouched.
    anonymous = {} if user else {"csrf": ""}
    response = render(
        request,
        "error.html",
        status_code=status_code,
        user=user,
        **anonymous,
        status=status_code,
        phrase=phrase,
        reason=REASONS.get(status_code, "The request could not be completed."),
        detail=shown,
        next_path=quote(request.url.path),
    )
    for name, value in (headers or {}).items():  # a 405's Allow, for one
        response.headers[name] = value
    return response


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Exception handler for HTTP errors: the styled page for pages, FastAPI's JSON otherwise."""
    if not wants_page(request.scope):
        return await http_exception_handler(request, exc)
    user = await run_in_threadpool(viewer, request)
    return error_page(request, exc.status_code, exc.detail, exc.headers, user)


class CrashPage:
    """Answers a page route's crash with the styled 500 page, then re-raises so the server logs
    it; SecurityHeaders, outside, adds its headers to this answer as to any other."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not wants_page(scope):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception:
            if not started:
                await error_page(Request(scope, receive), 500)(scope, receive, send)
            raise
