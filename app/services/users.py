"""User, role and API-token administration: the rules the admin pages enforce.

Deactivation locks the password hash (``app.core.auth.LOCKED``) and revokes the user's tokens, so
it needs no schema change and keeps the user's label history attributed to them. Every change
to who a user is or what they may do (deactivation, reactivation, a new role, a new password)
ends their page sessions (``app.core.auth.end_sessions``): the next request logs in again under the
new state, and a cookie from before a deactivation never comes back with the reactivation.

A new password revokes the tokens minted from the old one (``POST /api/v1/auth/token``): whoever
learnt the password must not keep access through them. Tokens an admin made (the admin tokens
page, ``assay token create``) survive it: scripts hold them, the admin lists and revokes them one
by one, and deactivation revokes them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, object_session

from app.core.auth import (
    LOCKED,
    UserExists,
    create_user,
    end_sessions,
    is_active,
    issue_token,
    password_hash,
)
from app.models import ApiToken, Role, User
from app.services.passwords import WeakPassword, check_password

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,80}$")
MAX_TOKEN_NAME = 120


class UserError(ValueError):
    """A refused change, naming the form field to fix."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass
class UserRow:
    user: User
    active: bool
    tokens: int


def list_users(session: Session) -> list[UserRow]:
    counts = dict(
        session.execute(select(ApiToken.user_id, func.count()).group_by(ApiToken.user_id)).all()
    )
    users = session.scalars(select(User).order_by(User.username))
    return [UserRow(u, is_active(u), counts.get(u.id, 0)) for u in users]


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise UserError("role", f"unknown role '{value}' (known: {known})") from None


def add_user(session: Session, username: str, password: str, role: str) -> User:
    username = username.strip()
    if not USERNAME.match(username):
        raise UserError("username", "1 to 80 letters, digits or . _ @ -")
    _check_password("password", password)
    try:
        return create_user(session, username, password, parse_role(role))
    except UserExists as err:
        raise UserError("username", str(err)) from None


def _check_password(field: str, password: str) -> None:
    try:
        check_password(password)
    except WeakPassword as err:
        raise UserError(field, str(err)) from None


def set_password(user: User, password: str, field: str = "password") -> None:
    """A new password under the policy; ends the user's sessions and revokes the tokens minted
    by logging in (at the caller's commit of ``user``'s session). A deactivated user stays
    locked, and reactivation brings back this password."""
    _check_password(field, password)
    hashed = password_hash.hash(password)
    user.password_hash = hashed if is_active(user) else LOCKED + hashed
    end_sessions(user)
    object_session(user).execute(
        delete(ApiToken).where(ApiToken.user_id == user.id, ApiToken.minted_by_login.is_(True))
    )


def change_own_password(user: User, current: str, new: str) -> None:
    """The user's own change: the current password first, so a left-open session cannot take
    over the account. (Callers count the attempt against the login limit.)"""
    if not password_hash.verify(current, user.password_hash):
        raise UserError("current_password", "wrong password")
    set_password(user, new, field="new_password")


def _not_self(actor: User, user: User, what: str) -> None:
    """An admin cannot lock themselves out; another admin has to do it."""
    if actor.id == user.id:
        raise UserError("user", f"you cannot {what} yourself; ask another admin")


def set_role(actor: User, user: User, role: str) -> None:
    new = parse_role(role)
    if new != Role.admin:
        _not_self(actor, user, "remove the admin role from")
    if new != user.role:
        user.role = new
        end_sessions(user)


def deactivate(session: Session, actor: User, user: User) -> None:
    """Logins, sessions and tokens stop working; the user's decisions stay theirs."""
    _not_self(actor, user, "deactivate")
    if is_active(user):
        user.password_hash = LOCKED + user.password_hash
    end_sessions(user)
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))


def reactivate(user: User) -> None:
    """The old password works again; revoked tokens and ended sessions stay ended."""
    if not is_active(user):
        user.password_hash = user.password_hash[len(LOCKED) :]
        end_sessions(user)


def list_tokens(session: Session) -> list[ApiToken]:
    return list(
        session.scalars(select(ApiToken).join(User).order_by(User.username, ApiToken.id.desc()))
    )


def add_token(session: Session, user: User, name: str) -> str:
    """The token in clear, once; only its hash is stored."""
    name = name.strip()
    if not name or len(name) > MAX_TOKEN_NAME:
        raise UserError("name", f"1 to {MAX_TOKEN_NAME} characters")
    if not is_active(user):
        raise UserError("user", f"'{user.username}' is deactivated; reactivate them first")
    return issue_token(session, user, name)


def revoke_token(session: Session, token: ApiToken) -> None:
    session.delete(token)
    session.flush()
