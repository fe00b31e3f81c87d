"""How a demo with known wrong labels reads once trained: how many of them the queue's first
tenth holds, against what a random order would give."""

from __future__ import annotations

from sqlalchemy import select

from app.core.db import session_scope
from app.models import DatasetKind, Item


def first_tenth(project_id: int, wrong: set[str]) -> str:
    """'the queue's first K hold F (random: about R)' over the silver items; ``wrong``: the
    external ids of the items the demo made wrong."""
    with session_scope() as session:
        ranked = session.scalars(
            select(Item.external_id)
            .where(Item.project_id == project_id, Item.dataset_kind == DatasetKind.silver.value)
            .order_by(Item.queue_rank.nulls_last(), Item.id)
        ).all()
    top = ranked[: max(len(ranked) // 10, 1)]
    found = sum(external_id in wrong for external_id in top)
    chance = len(wrong) * len(top) / max(len(ranked), 1)
    return f"the queue's first {len(top)} hold {found} (random: about {chance:.1f})"
