"""What a judgment's pages show beside it: the other judged documents of its query, each with
its grade and the newest model's rank of it within the query."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.kinds.ranking.formats import DOC_KEY
from app.models import Item
from app.services.items import ItemView
from app.services.results import item_scores

MODEL_RANK = "model_rank"  # the score kind the ranking job stores per judgment


def query_context(session: Session, view: ItemView) -> dict[str, Any]:
    """``query``: the judgment's query id; ``size``: its judged documents; ``rank``: the
    model's rank of this one (None before a model); ``others``: up to ASSAY_RANKING_CONTEXT_ROWS
    of the query's documents (this one always among them, ``current``) by model rank, else by
    id, each a dict of item id, doc, grade, model rank."""
    item = view.item
    if item.group_key is None:
        return {}
    rows = session.execute(
        select(Item.id, Item.external_id, Item.payload, Item.current_label)
        .where(Item.project_id == item.project_id, Item.group_key == item.group_key)
        .order_by(Item.id)
    ).all()
    ranks = item_scores(session, view.version.id, [r.id for r in rows]) if view.version else {}
    documents = [
        {
            "id": r.id,
            "doc": r.payload.get(DOC_KEY) or f"line {r.external_id}",
            "grade": r.current_label,
            "rank": _rank(ranks.get(r.id, {})),
            "current": r.id == item.id,
        }
        for r in rows
    ]
    documents.sort(key=lambda d: (d["rank"] is None, d["rank"] or 0, d["id"]))
    limit = get_settings().ranking_context_rows
    shown = documents[:limit]
    if not any(d["current"] for d in shown):
        shown = [*shown[: limit - 1], next(d for d in documents if d["current"])]
    return {
        "query": item.group_key,
        "size": len(documents),
        "rank": _rank(view.scores),
        "others": shown,
    }


def _rank(scores: dict[str, float]) -> int | None:
    value = scores.get(MODEL_RANK)
    return None if value is None else int(value)
