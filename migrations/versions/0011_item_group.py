"""Items that belong together: ``items.group_key`` names an item's group (a ranking
judgment's query), so a page can show the item beside the rest of its group with one indexed
lookup. Kinds without groups leave it NULL.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("group_key", sa.String(200), nullable=True))
    op.create_index("ix_items_group", "items", ["project_id", "group_key"])


def downgrade() -> None:
    op.drop_index("ix_items_group", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("group_key")
