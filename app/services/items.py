"""Reading items with their newest prediction and scores, page by page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.db import MAX_ROW_ID
from app.core.text import excerpt
from app.models import Item, ModelVersion, Prediction, Project
from app.services.item_filters import ItemFilter
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


UNSCORED = "u"  # cursor prefix: the page ended among the items without a suspicion rank


def list_items(
    session: Session,
    project: Project,
    *,
    order: Order,
    limit: int,
    cursor: str | None,
    unscored: bool = True,
    filters: ItemFilter | None = None,
) -> tuple[list[ItemView], str | None]:
    """A page of items. ``suspicion`` order lists the scored items, most suspicious first, then
    (``unscored``) the items the newest model did not rank, by id: before any training that is
    every item, so a client paging through sees the whole project either way.

    The cursor is the last row's sort key (a suspicion rank, or ``u`` and an item id once past
    the scored items; an item id in ``id`` order), so pages stay stable while annotators work.
    ``filters`` keep only the matching items (see ``ItemFilter``).
    """
    version = latest_model_version(session, project.id)
    rank_after, id_after = _parse_cursor(cursor, order)
    where = filters.conditions() if filters else []
    rows: list = []
    if order == "suspicion" and id_after is None and version is not None:
        query = _scored(project, version, rank_after).where(*where)
        rows = session.execute(query.limit(limit + 1)).all()
    if order == "id" or (unscored and len(rows) <= limit):
        query = _by_id(project, version, id_after, unscored_only=order == "suspicion").where(*where)
        rows += session.execute(query.limit(limit + 1 - len(rows))).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    views = _views(session, version, rows)
    next_cursor = None
    if has_more and rows:
        last_item, last_pred = rows[-1]
        if order == "id":
            next_cursor = str(last_item.id)
        elif last_pred is not None and last_pred.suspicion_rank is not None:
            next_cursor = str(last_pred.suspicion_rank)
        else:
            next_cursor = f"{UNSCORED}{last_item.id}"
    return views, next_cursor


def count_items(session: Session, project: Project, filters: ItemFilter) -> int:
    """How many of the project's items match (the browser's "N items match")."""
    version = latest_model_version(session, project.id)
    query = _by_id(project, version, None, unscored_only=False).where(*filters.conditions())
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))


def views_of(
    session: Session, project: Project, item_ids: list[int], filters: ItemFilter | None = None
) -> list[ItemView]:
    """The given items (those matching ``filters``) as views, in id order."""
    version = latest_model_version(session, project.id)
    where = [Item.id.in_(item_ids), *(filters.conditions() if filters else [])]
    rows = session.execute(_by_id(project, version, None, unscored_only=False).where(*where)).all()
    return _views(session, version, rows)


def _views(session: Session, version: ModelVersion | None, rows: list) -> list[ItemView]:
    """(item, prediction) rows as views, with their scores in one query."""
    scores = item_scores(session, version.id, [i.id for i, _ in rows]) if version else {}
    return [ItemView(item, pred, version, scores.get(item.id, {})) for item, pred in rows]


def _parse_cursor(cursor: str | None, order: Order) -> tuple[int | None, int | None]:
    """(rank after, item id after): at most one is set."""
    if not cursor:
        return None, None
    past_scored = order == "suspicion" and cursor.startswith(UNSCORED)
    digits = cursor[len(UNSCORED) :] if past_scored else cursor
    if (
        not digits.isascii()
        or not digits.isdigit()
        or len(digits) > len(str(MAX_ROW_ID))  # before int(): 5000 digits raise ValueError
        or not 0 <= int(digits) <= MAX_ROW_ID
    ):
        raise BadCursor(f"invalid cursor '{excerpt(cursor, get_settings().error_excerpt_chars)}'")
    if order == "id" or past_scored:
        return None, int(digits)
    return int(digits), None


def _scored(project: Project, version: ModelVersion, rank_after: int | None) -> Select:
    query = (
        select(Item, Prediction)
        .join(
            Prediction,
            and_(Prediction.item_id == Item.id, Prediction.model_version_id == version.id),
        )
        .where(Item.project_id == project.id, Prediction.suspicion_rank.is_not(None))
        .order_by(Prediction.suspicion_rank)
    )
    if rank_after is not None:
        query = query.where(Prediction.suspicion_rank > rank_after)
    return query


def _by_id(
    project: Project, version: ModelVersion | None, id_after: int | None, unscored_only: bool
) -> Select:
    """Items by id with the version's prediction, if any; ``unscored_only``: those it did not
    rank (no prediction, or one without a rank such as a dev or test item's)."""
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
    if unscored_only:
        query = query.where(Prediction.suspicion_rank.is_(None))
    if id_after is not None:
        query = query.where(Item.id > id_after)
    return query


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
