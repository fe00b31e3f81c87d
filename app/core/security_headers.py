"""Security headers on every response: pages, API, fragments, static files, redirects, errors.

Why a pure ASGI middleware: it sees every ``http.response.start`` (streamed exports and static
files included) without buffering bodies, and it can still answer a crashing route's 500 with
the headers, which Starlette's outer ServerErrorMiddleware would send without them.

The Content-Security-Policy allows scripts only from this origin or with the request's nonce
(``request.state.csp_nonce``, given to templates as ``csp_nonce``), styles only from this
origin, no plugins, no <base>, forms only to this origin and no framing.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NONCE_KEY = "csp_nonce"  # in scope["state"], so ``request.state.csp_nonce`` reads it


def csp_nonce(request: Request) -> str:
    """This request's nonce, for an inline <script nonce="..."> the policy must allow."""
    return request.scope["state"][NONCE_KEY]


def content_security_policy(nonce: str) -> str:
    """The policy every page satisfies: no inline script without ``nonce``, no inline style."""
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self'",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeaders:
    """Adds the headers to every HTTP response; a header a route set itself is kept."""

    def __init__(self, app: ASGIApp, *, hsts_max_age_s: int, referrer_policy: str) -> None:
        self.app = app
        self.hsts = f"max-age={hsts_max_age_s}" if hsts_max_age_s else None
        self.referrer_policy = referrer_policy

    def headers(self, scope: Scope, nonce: str) -> dict[str, str]:
        values = {
            "Content-Security-Policy": content_security_policy(nonce),
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": self.referrer_policy,
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        if self.hsts and scope.get("scheme") == "https":  # browsers ignore HSTS over http
            values["Strict-Transport-Security"] = self.hsts
        return values

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})[NONCE_KEY] = nonce
        extra = self.headers(scope, nonce)
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if not started:  # answer the 500 here, with the headers; the server logs the error
                await PlainTextResponse("Internal Server Error", 500, headers=extra)(
                    scope, receive, send
                )
            raise
