"""Trust: project members, a per-user session version, idempotency keys scoped to their user,
unique project names, API tokens marked when minted by a login

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0001 left label_events' unique key unnamed: SQLite's batch mode finds it by this convention,
# PostgreSQL named it <table>_<column>_key.
UNNAMED = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    op.create_table(
        "project_members",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("added_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["added_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("project_id", "user_id"),
    )
    op.create_index("ix_project_members_user_id", "project_members", ["user_id"])

    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="0")
        )

    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(
            sa.Column("minted_by_login", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("label_events", naming_convention=UNNAMED) as batch:
        batch.drop_constraint(
            "uq_label_events_idempotency_key" if sqlite else "label_events_idempotency_key_key",
            type_="unique",
        )
        batch.create_unique_constraint("uq_label_events_user_key", ["user_id", "idempotency_key"])
    with op.batch_alter_table("assignments") as batch:
        batch.drop_constraint("uq_assignments_idempotency_key", type_="unique")
        batch.create_unique_constraint("uq_assignments_user_key", ["user_id", "idempotency_key"])

    # Names become unique: an older database's repeated names get their id appended, cut to
    # fit the column (200), in a form no name typed by hand is likely to have.
    op.execute(
        "UPDATE projects SET name = substr(name, 1, 175) || ' (project ' || id || ')'"
        " WHERE EXISTS (SELECT 1 FROM projects p"
        " WHERE p.name = projects.name AND p.id < projects.id)"
    )
    op.create_index("uq_projects_name", "projects", ["name"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_projects_name", table_name="projects")
    with op.batch_alter_table("assignments") as batch:
        batch.drop_constraint("uq_assignments_user_key", type_="unique")
        batch.create_unique_constraint("uq_assignments_idempotency_key", ["idempotency_key"])
    with op.batch_alter_table("label_events") as batch:
        batch.drop_constraint("uq_label_events_user_key", type_="unique")
        batch.create_unique_constraint("label_events_idempotency_key_key", ["idempotency_key"])
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("minted_by_login")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")
    op.drop_index("ix_project_members_user_id", table_name="project_members")
    op.drop_table("project_members")
