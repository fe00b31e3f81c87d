"""Users, password hashing, API tokens, page sessions and CSRF.

A page session is Starlette's signed cookie holding the user's id, their ``session_version`` at
login, and the login and last-seen times. Raising ``users.session_version`` (``end_sessions``:
logout, deactivation, reactivation, role and password changes) makes every cookie issued before
it worthless at once, with no server-side session table; the times enforce
``session_idle_timeout_s`` and ``session_max_lifetime_s``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from app.core.config import get_settings
from app.core.db import get_db
from app.models import ApiToken, Role, User

password_hash = PasswordHash.recommended()  # argon2id
bearer = HTTPBearer(auto_error=False)
SESSION_USER = "user_id"
SESSION_VERSION = "session_version"
SESSION_ISSUED = "issued_at"  # epoch seconds of the login
SESSION_SEEN = "seen_at"  # epoch seconds of the last page request that used the session
SESSION_CSRF = "csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
# A deactivated user's password hash starts with this (as a locked account in /etc/shadow):
# no hash begins with it, so nothing verifies, and reactivation restores the old password.
LOCKED = "!"


class UserExists(ValueError):
    pass


def is_active(user: User) -> bool:
    return not user.password_hash.startswith(LOCKED)


def create_user(session: Session, username: str, password: str, role: Role) -> User:
    if session.scalar(select(User).where(User.username == username)):
        raise UserExists(f"user '{username}' already exists")
    user = User(username=username, password_hash=password_hash.hash(password), role=role)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not is_active(user):
        password_hash.hash(password)  # same work either way: no user enumeration by timing
        return None
    return user if password_hash.verify(password, user.password_hash) else None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, name: str, minted_by_login: bool = False) -> str:
    """A new API token; only its hash is stored, so this is the one time it is seen.

    ``minted_by_login``: made from the user's password, so a new password revokes it."""
    token = "assay_" + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            name=name,
            token_hash=hash_token(token),
            minted_by_login=minted_by_login,
        )
    )
    session.flush()
    return token


def api_user(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    db: Session = Depends(get_db),
) -> User:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = db.scalar(
        select(ApiToken)
        .options(joinedload(ApiToken.user))  # one round trip on every API request, not two
        .where(ApiToken.token_hash == hash_token(credentials.credentials))
    )
    if token is None or not is_active(token.user):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid token", headers={"WWW-Authenticate": "Bearer"}
        )
    return token.user


def admin_only(user: User) -> User:
    """403 unless ``user`` is an admin (the API's and the pages' admin dependencies)."""
    if user.role != Role.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin role required")
    return user


def api_admin(user: User = Depends(api_user)) -> User:
    return admin_only(user)


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to the login page."""


def end_sessions(user: User) -> None:
    """Every page session of ``user`` issued so far stops working (at the caller's commit).

    An SQL increment, not a read-modify-write: two concurrent ends both count."""
    user.session_version = User.session_version + 1


def start_session(request: Request, user: User) -> None:
    """A fresh session for ``user`` (a new CSRF token too: none survives from before login)."""
    now = int(time.time())
    request.session.clear()
    request.session.update(
        {
            SESSION_USER: user.id,
            SESSION_VERSION: user.session_version,
            SESSION_ISSUED: now,
            SESSION_SEEN: now,
        }
    )


def session_user(request: Request, db: Session) -> User | None:
    """The user this request's session belongs to, or None when there is none or it has ended:
    a user gone or deactivated, an older session version, idle or lifetime exceeded."""
    session = request.session
    user_id = session.get(SESSION_USER)
    user = db.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or not is_active(user):
        return None
    settings, now = get_settings(), time.time()
    issued, seen = session.get(SESSION_ISSUED), session.get(SESSION_SEEN)
    if (
        session.get(SESSION_VERSION) != user.session_version
        or not isinstance(issued, int)
        or not isinstance(seen, int)
        or now - seen > settings.session_idle_timeout_s
        or now - issued > settings.session_max_lifetime_s
    ):
        return None
    return user


def polled_page_user(request: Request, db: Session = Depends(get_db)) -> User:
    """``page_user`` for the requests a page makes by itself (htmx polling of the dashboard's
    stats and a job's progress): the session is checked but last-seen is left alone, so a tab
    left open still idles out after ``session_idle_timeout_s``."""
    user = session_user(request, db)
    if user is None:
        if SESSION_USER in request.session:  # keep an anonymous visitor's CSRF token
            request.session.clear()
        raise LoginRequired()
    return user


def page_user(request: Request, db: Session = Depends(get_db)) -> User:
    """The logged-in user, else LoginRequired (and an ended session is dropped).

    Last-seen is refreshed on every page request: Starlette re-signs and re-sends the cookie on
    every response anyway, so throttling the write would save nothing."""
    user = polled_page_user(request, db)
    request.session[SESSION_SEEN] = int(time.time())
    return user


def page_admin(user: User = Depends(page_user)) -> User:
    return admin_only(user)


def polled_page_admin(user: User = Depends(polled_page_user)) -> User:
    """``page_admin`` for polling (``polled_page_user``)."""
    return admin_only(user)


def csrf_token(request: Request) -> str:
    token = request.session.get(SESSION_CSRF)
    if token is None:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


async def verify_csrf(request: Request) -> None:
    """Forms send the token as a field, htmx as a header; either must match the session's."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        sent = form.get(CSRF_FIELD)
    check_csrf(request, sent)


def check_csrf(request: Request, sent: object) -> None:
    """403 unless ``sent`` is the session's token (the upload page checks its streamed field
    with this before any file byte is stored)."""
    expected = request.session.get(SESSION_CSRF)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(expected, sent):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "stale or missing form token: reload the page"
        )
