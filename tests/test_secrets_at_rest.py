"""Secrets at rest, on SQLite and PostgreSQL: passwords are argon2id hashes, API tokens are
stored only as hashes, and neither appears anywhere in the database in the clear. Production
mode refuses to run without an explicit secret key; embedded mode keeps its own, private."""

from __future__ import annotations

import stat

import pytest
from sqlalchemy import select

from tests.seeding import PASSWORD, page_login
from tests.support import REDIS_URL, assay_env, database_rows


def _stored_anywhere(secret: str) -> list[str]:
    return [
        table
        for table, rows in database_rows().items()
        if any(secret in str(value) for row in rows for value in row)
    ]


def test_passwords_are_argon2id_and_tokens_are_stored_hashed(client, admin_headers):
    from app.core.auth import hash_token
    from app.core.db import session_scope
    from app.models import ApiToken, User

    csrf = page_login(client, "ada")  # a second user, made through the admin page
    made = client.post(
        "/admin/users",
        data={"username": "bea", "password": "b-secret-password", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    issued = client.post("/api/v1/auth/token", json={"username": "ada", "password": PASSWORD})
    assert issued.status_code == 201, issued.text
    tokens = [issued.json()["token"], admin_headers["Authorization"].removeprefix("Bearer ")]

    with session_scope() as session:
        hashes = session.scalars(select(User.password_hash)).all()
        token_hashes = set(session.scalars(select(ApiToken.token_hash)).all())
    assert len(hashes) == 2 and all(h.startswith("$argon2id$") for h in hashes), hashes
    for secret in (PASSWORD, "b-secret-password", *tokens):
        assert _stored_anywhere(secret) == [], "a secret is stored in the clear"
    assert {hash_token(t) for t in tokens} <= token_hashes


@pytest.mark.parametrize(
    "external",
    [
        {"database_url": "postgresql+psycopg://postgres@127.0.0.1:5432/unused"},
        {"broker_url": REDIS_URL},
    ],
    ids=["database", "broker"],
)
def test_production_mode_needs_an_explicit_secret_key(tmp_path, external):
    """Set but empty counts as unset; no key is made up (nothing is connected to first)."""
    from app.core.config import ConfigError
    from app.main import create_app

    with (
        assay_env(tmp_path, **external, secret_key=""),
        pytest.raises(ConfigError, match="ASSAY_SECRET_KEY is not set"),
    ):
        create_app()
    assert not (tmp_path / "secret_key").exists()


def test_embedded_mode_keeps_a_private_generated_key(tmp_path):
    from app.core.config import get_settings

    with assay_env(tmp_path):
        key = get_settings().resolved_secret_key()
        assert len(key) >= 32 and get_settings().resolved_secret_key() == key
        mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
        assert mode == 0o600, oct(mode)
