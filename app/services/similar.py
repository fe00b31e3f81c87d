""" "Items like this": the items whose evidence shares training items with this one's.

Two items the same training items push around are, as far as the model is concerned, alike:
a wrong label found on one often has siblings among them, which a reviewer can then fix in one
bulk change. The evidence is stored already (top supporters, opposers and proponents per item
and model version), so this costs one indexed query, and needs no embeddings in the web tier.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from app.models import Influencer, Item, Project
from app.services.item_filters import ItemFilter
from app.services.items import ItemView, views_of
from app.services.results import latest_model_version


@dataclass(frozen=True)
class Similar:
    view: ItemView
    shared: int  # training items in both items' evidence


def items_like(
    session: Session, project: Project, item: Item, limit: int, filters: ItemFilter | None = None
) -> list[Similar]:
    """Up to ``limit`` items sharing the most evidence items with ``item`` under the newest
    model version, most shared first (then by id); ``filters`` narrow them further."""
    version = latest_model_version(session, project.id)
    if version is None:
        return []
    mine = select(Influencer.train_item_id).where(
        Influencer.model_version_id == version.id, Influencer.target_item_id == item.id
    )
    shared = func.count(distinct(Influencer.train_item_id)).label("shared")
    query = (
        select(Influencer.target_item_id, shared)
        .where(
            Influencer.model_version_id == version.id,
            Influencer.train_item_id.in_(mine),
            Influencer.target_item_id != item.id,
        )
        .group_by(Influencer.target_item_id)
        .order_by(shared.desc(), Influencer.target_item_id)
    )
    counts = dict(session.execute(query).all())
    ids = list(counts) if filters and not filters.is_empty() else list(counts)[:limit]
    views = views_of(session, project, ids, filters)
    views.sort(key=lambda view: (-counts[view.item.id], view.item.id))
    return [Similar(view, counts[view.item.id]) for view in views[:limit]]
