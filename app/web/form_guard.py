"""Refuse NUL characters in page forms before any handler sees them.

PostgreSQL cannot store NUL in text, so a form value holding one would fail deep inside a
handler (a 500 on PostgreSQL, stored as-is on SQLite); no browser form sends one on purpose.
"""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from app.core.request_limits import is_upload


async def reject_nul_in_form(request: Request) -> None:
    if request.method != "POST" or is_upload(request.scope):
        return  # the upload page streams its own body, after the login check
    form = await request.form()  # cached on the request: the handler's Form() reads the same
    for name, value in form.multi_items():
        if isinstance(value, str) and "\x00" in value:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"{name}: must not contain NUL characters (\\u0000)",
            )
