"""Evidence labels: the label each evidence item had in its model version's training snapshot,
and the label of the target whose loss its influence is about

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10

Why a column on ``influencers`` and not a per-version snapshot table: only the evidence rows
(top-k per list per item) ever show a training label, so storing it beside them costs one
string per row, needs no join at read time, and is written by the worker in the same insert
(``app/services/results.py``). A full snapshot table would hold every training item per version
for nothing the pages read.

Old rows stay NULL: the label those versions trained on was never stored, and the only value at
hand, ``items.current_label``, is exactly the wrong one after a correction (the bug this column
fixes). The pages say "not recorded" for them; retraining writes the real snapshot.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("influencers") as batch:
        batch.add_column(sa.Column("train_label", sa.String(200), nullable=True))
        batch.add_column(sa.Column("target_label", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("influencers") as batch:
        batch.drop_column("target_label")
        batch.drop_column("train_label")
