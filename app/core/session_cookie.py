"""The session cookie: HttpOnly and SameSite=lax always, Secure whenever the request is HTTPS.

Starlette's SessionMiddleware decides ``Secure`` once (``https_only``, here
``ASSAY_SECURE_COOKIES``). This subclass also marks the cookie Secure on any request whose scheme
is https: served over TLS, or behind a proxy that sends ``X-Forwarded-Proto: https`` and that
``assay serve`` trusts (its address is in ``ASSAY_TRUSTED_PROXIES``; by default no proxy is).

What the cookie carries (the user's session version and its times) and when it ends is
``app.auth``'s business; its Max-Age is ``session_idle_timeout_s``, renewed by every response.
"""

from __future__ import annotations

from starlette.middleware.sessions import SessionMiddleware
from starlette.types import Message, Receive, Scope, Send


class SessionCookieMiddleware(SessionMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await super().__call__(scope, receive, send)
            return
        prefix = f"{self.session_cookie}=".encode()

        async def secure_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (name, value + b"; secure")
                    if name.lower() == b"set-cookie"
                    and value.startswith(prefix)
                    and b"; secure" not in value.lower()
                    else (name, value)
                    for name, value in message.get("headers", [])
                ]
            await send(message)

        await super().__call__(scope, receive, secure_send)
