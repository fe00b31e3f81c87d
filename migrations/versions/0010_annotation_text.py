"""Annotations as text: the label columns of items, votes, events, predictions and evidence
become unbounded, so a sequence-tagging annotation (every span of a sentence, encoded by
``app.kinds.sequence_tagging.annotation``) fits; a class label is one short string in them.
``predictions.focus``: the part of the item its suspicion is about (a sentence's most
suspicious span), which the queue highlights.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

On PostgreSQL a VARCHAR to TEXT change rewrites no rows; SQLite (which enforces no length) copies
each table once, as its batch mode does.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    "items": ("silver_label", "gold_label", "reference_label", "current_label"),
    "label_events": ("old_label", "new_label"),
    "label_groups": ("label",),
    "predictions": ("label", "suggested_label"),
    "influencers": ("train_label", "target_label"),
    "assignments": ("label",),
}


def _alter(to: sa.types.TypeEngine) -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, type_=to)


def upgrade() -> None:
    _alter(sa.Text())
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("focus", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("focus")
    _alter(sa.String(200))
