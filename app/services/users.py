"""User, role and API-token administration: the rules the admin pages enforce.

Deactivation locks the password hash (``app.auth.LOCKED``) and revokes the user's tokens, so
it needs no schema change and keeps the user's label history attributed to them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.auth import LOCKED, UserExists, create_user, is_active, issue_token
from app.models import ApiToken, Role, User

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,80}$")
MIN_PASSWORD = 8
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
    if len(password) < MIN_PASSWORD:
        raise UserError("password", f"at least {MIN_PASSWORD} characters")
    try:
        return create_user(session, username, password, parse_role(role))
    except UserExists as err:
        raise UserError("username", str(err)) from None


def _not_self(actor: User, user: User, what: str) -> None:
    """An admin cannot lock themselves out; another admin has to do it."""
    if actor.id == user.id:
        raise UserError("user", f"you cannot {what} yourself; ask another admin")


def set_role(actor: User, user: User, role: str) -> None:
    new = parse_role(role)
    if new != Role.admin:
        _not_self(actor, user, "remove the admin role from")
    user.role = new


def deactivate(session: Session, actor: User, user: User) -> None:
    """Logins, sessions and tokens stop working; the user's decisions stay theirs."""
    _not_self(actor, user, "deactivate")
    if is_active(user):
        user.password_hash = LOCKED + user.password_hash
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))


def reactivate(user: User) -> None:
    """The old password works again; revoked tokens stay revoked."""
    if not is_active(user):
        user.password_hash = user.password_hash[len(LOCKED) :]


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
