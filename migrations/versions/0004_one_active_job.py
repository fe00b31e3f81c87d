"""One queued or running job per project and kind, kept by the database

The retraining policy may fire from several annotators' commits at once; a partial unique
index lets exactly one of them create the training job.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("state IN ('queued', 'running')")


def upgrade() -> None:
    # an older database may hold duplicates from the check-then-insert era: keep the newest
    op.execute(
        "UPDATE jobs SET state = 'cancelled', error = 'superseded by a newer job'"
        " WHERE state IN ('queued', 'running') AND id NOT IN ("
        " SELECT max(id) FROM jobs WHERE state IN ('queued', 'running')"
        " GROUP BY project_id, kind)"
    )
    op.create_index(
        "uq_jobs_one_active",
        "jobs",
        ["project_id", "kind"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_jobs_one_active", table_name="jobs")
