"""Bulk changes: ``label_groups`` (one reviewer action over many items, undone together) and,
on each label event, its group and the status the item had before it; an index for "items
like this" (the targets sharing a training item's evidence)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

Why a table and not a shared key on the events: the events' idempotency keys are unique per user
(one request, one event), while a bulk change is one request making many events. The group row
holds that request's key, and ``undone_at`` lets every count ask "was this taken back?" with one
lookup instead of pairing undo events with the events they reverse.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "label_groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_label_groups_user_key"),
    )
    op.create_index("ix_label_groups_project_id", "label_groups", ["project_id"])
    with op.batch_alter_table("label_events") as batch:
        batch.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("old_status", sa.String(20), nullable=True))
        batch.create_foreign_key(
            "fk_label_events_group_id", "label_groups", ["group_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_label_events_group_id", ["group_id"])
    # "items like this" looks up the targets a training item is evidence for
    op.create_index("ix_influencers_train", "influencers", ["model_version_id", "train_item_id"])


def downgrade() -> None:
    op.drop_index("ix_influencers_train", "influencers")
    with op.batch_alter_table("label_events") as batch:
        batch.drop_index("ix_label_events_group_id")
        batch.drop_constraint("fk_label_events_group_id", type_="foreignkey")
        batch.drop_column("old_status")
        batch.drop_column("group_id")
    op.drop_index("ix_label_groups_project_id", "label_groups")
    op.drop_table("label_groups")
