"""Reading items with their newest prediction and scores, page by page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from app.db import MAX_ROW_ID
from app.models import Item, ModelVersion, Prediction, Project
from app.services.results import item_scores, latest_model_version

Order = Literal["suspicion", "id"]


class BadCursor(ValueError):
    pass


@dataclass
class ItemView:
    item: Item
    prediction: Prediction | None
    version: ModelVersion | None
    scores: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        item, pred, version = self.item, self.prediction, self.version
        return {
            "id": item.id,
            "external_id": item.external_id,
            "dataset_kind": item.dataset_kind,
            "text": item.text,
            "silver_label": item.silver_label,
            "gold_label": item.gold_label,
            "current_label": item.current_label,
            "status": item.status,
            "predicted_label": pred.label if pred else None,
            "suggested_label": pred.suggested_label if pred else None,
            "confidence": pred.confidence if pred else None,
            "suspicion_rank": pred.suspicion_rank if pred else None,
            "scores": self.scores,
            "model_version": version.version if version and pred else None,
            "estimator": version.estimator if version and pred else None,
        }


def list_items(
    session: Session, project: Project, *, order: Order, limit: int, cursor: str | None
) -> tuple[list[ItemView], str | None]:
    """A page of items; ``suspicion`` order lists scored items, most suspicious first.

    The cursor is the last row's sort key, so pages stay stable while annotators work.
    """
    version = latest_model_version(session, project.id)
    try:
        after = int(cursor) if cursor else None
    except ValueError:
        raise BadCursor(f"invalid cursor '{cursor}'") from None
    if after is not None and not 0 <= after <= MAX_ROW_ID:
        raise BadCursor(f"invalid cursor '{cursor}'")
    if order == "suspicion" and version is not None:
        query = (
            select(Item, Prediction)
            .join(
                Prediction,
                and_(Prediction.item_id == Item.id, Prediction.model_version_id == version.id),
            )
            .where(Item.project_id == project.id, Prediction.suspicion_rank.is_not(None))
            .order_by(Prediction.suspicion_rank)
        )
        if after is not None:
            query = query.where(Prediction.suspicion_rank > after)
    elif order == "suspicion":
        return [], None
    else:
        query = (
            select(Item, Prediction)
            .outerjoin(
                Prediction,
                and_(
                    Prediction.item_id == Item.id,
                    Prediction.model_version_id == (version.id if version else -1),
                ),
            )
            .where(Item.project_id == project.id)
            .order_by(Item.id)
        )
        if after is not None:
            query = query.where(Item.id > after)
    rows = session.execute(query.limit(limit + 1)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    scores = item_scores(session, version.id, [i.id for i, _ in rows]) if version else {}
    views = [ItemView(item, pred, version, scores.get(item.id, {})) for item, pred in rows]
    next_cursor = None
    if has_more and rows:
        last_item, last_pred = rows[-1]
        next_cursor = str(last_pred.suspicion_rank if order == "suspicion" else last_item.id)
    return views, next_cursor


def item_view(session: Session, item: Item) -> ItemView:
    """The item with the newest model version's prediction and scores. The version and its
    prediction come in one round trip: this runs on every queue request."""
    row = session.execute(
        select(ModelVersion, Prediction)
        .outerjoin(
            Prediction,
            and_(Prediction.model_version_id == ModelVersion.id, Prediction.item_id == item.id),
        )
        .where(ModelVersion.project_id == item.project_id)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    ).first()
    if row is None:
        return ItemView(item, None, None)
    version, pred = row
    return ItemView(item, pred, version, item_scores(session, version.id, [item.id])[item.id])


def prediction_history(session: Session, item: Item) -> list[tuple[ModelVersion, Prediction]]:
    """What every model version said about the item, oldest first: how the prediction,
    the suggestion and the suspicion rank moved as corrections came in."""
    rows = session.execute(
        select(ModelVersion, Prediction)
        .join(Prediction, Prediction.model_version_id == ModelVersion.id)
        .where(Prediction.item_id == item.id)
        .order_by(ModelVersion.version)
    )
    return [(version, pred) for version, pred in rows]
