"""Shared queue: leases on the item row, votes and skips per annotator, reviewer approval

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("leased_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("approved_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_items_leased_by_id_users", "users", ["leased_by_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_foreign_key(
            "fk_items_approved_by_id_users",
            "users",
            ["approved_by_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_items_leased_by_id", ["leased_by_id"])

    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("label", sa.String(200), nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(100), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_unique_constraint("uq_assignments_idempotency_key", ["idempotency_key"])
    # Old leases lived on assignments; a decided one keeps the item's gold label as its vote.
    op.execute(
        "UPDATE assignments SET label = (SELECT gold_label FROM items"
        " WHERE items.id = assignments.item_id) WHERE state = 'done'"
    )
    op.execute("UPDATE assignments SET state = 'open' WHERE state = 'leased'")
    op.execute("UPDATE assignments SET updated_at = created_at")
    with op.batch_alter_table("assignments") as batch:
        batch.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_column("lease_expires_at")


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(
            sa.Column(
                "lease_expires_at",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.func.current_timestamp(),
            )
        )
        batch.drop_constraint("uq_assignments_idempotency_key", type_="unique")
        batch.drop_column("updated_at")
        batch.drop_column("idempotency_key")
        batch.drop_column("label")
    op.execute("UPDATE assignments SET state = 'skipped' WHERE state = 'passed'")
    with op.batch_alter_table("items") as batch:
        batch.drop_index("ix_items_leased_by_id")
        batch.drop_constraint("fk_items_approved_by_id_users", type_="foreignkey")
        batch.drop_constraint("fk_items_leased_by_id_users", type_="foreignkey")
        batch.drop_column("approved_by_id")
        batch.drop_column("lease_expires_at")
        batch.drop_column("leased_by_id")
