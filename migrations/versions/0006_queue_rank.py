"""Queue rank on the item row: the next item without walking past the decided ones

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("queue_rank", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE items SET queue_rank = ("
        " SELECT p.suspicion_rank FROM predictions p"
        " JOIN model_versions v ON v.id = p.model_version_id"
        " WHERE p.item_id = items.id AND v.project_id = items.project_id"
        " AND v.version = (SELECT max(version) FROM model_versions m"
        " WHERE m.project_id = items.project_id))"
    )
    op.create_index("ix_items_queue", "items", ["project_id", "status", "queue_rank", "id"])


def downgrade() -> None:
    op.drop_index("ix_items_queue", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("queue_rank")
