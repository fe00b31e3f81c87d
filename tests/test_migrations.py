"""The migrations build exactly the schema the models declare, and 0007 upgrades old data."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from app.core.db import alembic_config
from app.models import Base
from tests.support import assay_env, postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        with assay_env(tmp_path):
            yield f"sqlite:///{tmp_path / 'assay.db'}"
    else:
        with postgres_database() as url, assay_env(tmp_path, database_url=url):
            yield url


def test_migrations_match_the_models(database_url):
    command.upgrade(alembic_config(database_url), "head")
    engine = create_engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []


def test_0007_keeps_old_rows_and_renames_repeated_project_names(database_url):
    command.upgrade(alembic_config(database_url), "0006")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO projects (id, name, task_kind, labels, settings, created_at) VALUES"
                " (1, 'P', 'text_classification', '[]', '{}', CURRENT_TIMESTAMP),"
                " (2, 'P', 'text_classification', '[]', '{}', CURRENT_TIMESTAMP),"
                " (3, :long, 'text_classification', '[]', '{}', CURRENT_TIMESTAMP),"
                " (4, :long, 'text_classification', '[]', '{}', CURRENT_TIMESTAMP)"
            ),
            {"long": "L" * 200},
        )
        connection.execute(
            text(
                "INSERT INTO users (id, username, password_hash, role, created_at)"
                " VALUES (1, 'u', 'x', 'admin', CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at)"
                " VALUES (1, 1, 'cli', 'h', CURRENT_TIMESTAMP)"
            )
        )
    command.upgrade(alembic_config(database_url), "head")
    with engine.connect() as connection:
        names = connection.execute(text("SELECT name FROM projects ORDER BY id")).scalars().all()
        version = connection.execute(text("SELECT session_version FROM users")).scalar_one()
        by_login = connection.execute(text("SELECT minted_by_login FROM api_tokens")).scalar_one()
    engine.dispose()
    assert names == ["P", "P (project 2)", "L" * 200, "L" * 175 + " (project 4)"]
    assert version == 0
    assert not by_login  # tokens from before were made by an admin or the CLI: they stay
