"""The review queue: who gets which item next, and what a decision does to the labels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from app.models import (
    REVIEWABLE_KINDS,
    Assignment,
    Item,
    ItemStatus,
    LabelEvent,
    Prediction,
    Project,
    User,
    utcnow,
)
from app.services.results import latest_model_version


class DecisionError(ValueError):
    pass


def _held_by_other_or_skipped(user: User):
    """Items another annotator holds a live lease on, or that this user skipped."""
    now = utcnow()
    return exists().where(
        Assignment.item_id == Item.id,
        or_(
            and_(
                Assignment.user_id != user.id,
                Assignment.state == "leased",
                Assignment.lease_expires_at > now,
            ),
            and_(Assignment.user_id == user.id, Assignment.state == "skipped"),
        ),
    )


def next_item(session: Session, project: Project, user: User, lease_ttl_s: int) -> Item | None:
    """The most suspicious pending item nobody else holds, leased to ``user``.

    Without a model yet the queue falls back to upload order. The caller commits.
    """
    version = latest_model_version(session, project.id)
    query = select(Item).where(
        Item.project_id == project.id,
        Item.dataset_kind.in_([k.value for k in REVIEWABLE_KINDS]),
        Item.status == ItemStatus.pending,
        ~_held_by_other_or_skipped(user),
    )
    if version is not None:
        query = query.join(
            Prediction,
            and_(Prediction.item_id == Item.id, Prediction.model_version_id == version.id),
        ).order_by(Prediction.suspicion_rank, Item.id)
    else:
        query = query.order_by(Item.id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Item)
    item = session.scalar(query.limit(1))
    if item is not None:
        lease(session, item, user, lease_ttl_s)
    return item


def lease(session: Session, item: Item, user: User, lease_ttl_s: int) -> None:
    expires = utcnow() + timedelta(seconds=lease_ttl_s)
    held = session.scalar(
        select(Assignment).where(Assignment.item_id == item.id, Assignment.user_id == user.id)
    )
    if held is None:
        session.add(
            Assignment(item_id=item.id, user_id=user.id, state="leased", lease_expires_at=expires)
        )
    else:
        held.state, held.lease_expires_at = "leased", expires
    session.flush()


def skip(session: Session, item: Item, user: User) -> None:
    held = session.scalar(
        select(Assignment).where(Assignment.item_id == item.id, Assignment.user_id == user.id)
    )
    if held is None:
        session.add(
            Assignment(item_id=item.id, user_id=user.id, state="skipped", lease_expires_at=utcnow())
        )
    else:
        held.state = "skipped"
    session.flush()


@dataclass
class DecisionOutcome:
    event: LabelEvent
    duplicate: bool


def decide(
    session: Session,
    project: Project,
    item: Item,
    user: User,
    label: str,
    idempotency_key: str,
    reason: str | None = None,
) -> DecisionOutcome:
    """Set an item's gold label and append the event; the same key again changes nothing."""
    earlier = session.scalar(
        select(LabelEvent).where(LabelEvent.idempotency_key == idempotency_key)
    )
    if earlier is not None:
        if earlier.item_id != item.id:
            raise DecisionError("this idempotency key was already used for another item")
        return DecisionOutcome(earlier, duplicate=True)
    if label not in project.labels:
        raise DecisionError(
            f"unknown label '{label}' (project labels: {', '.join(project.labels)})"
        )
    if item.project_id != project.id:
        raise DecisionError("item belongs to another project")
    event = LabelEvent(
        item_id=item.id,
        user_id=user.id,
        source="annotator",
        old_label=item.current_label,
        new_label=label,
        reason=reason,
        idempotency_key=idempotency_key,
    )
    session.add(event)
    item.gold_label = label
    item.current_label = label
    item.status = ItemStatus.reviewed
    held = session.scalar(
        select(Assignment).where(Assignment.item_id == item.id, Assignment.user_id == user.id)
    )
    if held is not None:
        held.state = "done"
    session.flush()
    return DecisionOutcome(event, duplicate=False)


def history(session: Session, item: Item) -> list[LabelEvent]:
    return list(
        session.scalars(
            select(LabelEvent).where(LabelEvent.item_id == item.id).order_by(LabelEvent.id)
        )
    )
