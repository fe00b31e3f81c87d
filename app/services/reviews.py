"""The reviewer's pass over decided items: approve a decision, override it, or settle a tie."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from app.models import (
    REVIEWABLE_KINDS,
    Assignment,
    EventSource,
    Item,
    ItemStatus,
    LabelEvent,
    Project,
    Role,
    User,
)
from app.services.deciders import check_changeable
from app.services.decisions import (
    DecisionOutcome,
    check_label,
    decide,
    earlier_event,
    set_final,
)
from app.services.queue import DecisionError, StaleAction, lock_item

REVIEWABLE_STATUSES = (ItemStatus.reviewed, ItemStatus.disputed)
REVIEW_ROLES = (Role.reviewer, Role.admin)


def can_review(user: User) -> bool:
    return user.role in REVIEW_ROLES


@dataclass
class ReviewRow:
    item: Item
    votes: list[tuple[str, str]] = field(default_factory=list)  # (annotator, label)


def awaiting_review(session: Session, project: Project, limit: int) -> list[ReviewRow]:
    """Decided items no reviewer has seen yet, ties first."""
    items = list(
        session.scalars(
            select(Item)
            .where(
                Item.project_id == project.id,
                Item.dataset_kind.in_([k.value for k in REVIEWABLE_KINDS]),
                Item.status.in_([s.value for s in REVIEWABLE_STATUSES]),
                Item.approved_by_id.is_(None),
            )
            .order_by(case((Item.status == ItemStatus.disputed, 0), else_=1), Item.id)
            .limit(limit)
        )
    )
    cast = voters(session, [item.id for item in items])
    return [ReviewRow(item, cast.get(item.id, [])) for item in items]


def voters(session: Session, item_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    """Who voted what on each item, by annotator name."""
    found: dict[int, list[tuple[str, str]]] = {}
    rows = session.execute(
        select(Assignment.item_id, User.username, Assignment.label)
        .join(User, User.id == Assignment.user_id)
        .where(Assignment.item_id.in_(item_ids), Assignment.state == "done")
        .order_by(Assignment.item_id, User.username)
    )
    for item_id, username, label in rows:
        found.setdefault(item_id, []).append((username, label))
    return found


def review(
    session: Session,
    project: Project,
    item: Item,
    reviewer: User,
    idempotency_key: str,
    label: str | None = None,
) -> DecisionOutcome:
    """Approve the item's decision (no ``label``) or override it; the reviewer authors the
    ``review`` event, and the item leaves the review list."""

    def same(event: LabelEvent) -> bool:  # no label: an approval, of whatever label it had
        wanted = event.new_label if label is None and event.reason == "approved" else label
        request = (EventSource.review, item.id, wanted)
        return (event.source, event.item_id, event.new_label) == request

    earlier = earlier_event(session, reviewer, idempotency_key, same)
    if earlier is not None:
        return DecisionOutcome(earlier, duplicate=True)
    if item.project_id != project.id:
        raise DecisionError("item belongs to another project")
    check_changeable(item)
    if label is not None:
        label = check_label(project, item, label)
    lock_item(session, item)
    if item.status not in REVIEWABLE_STATUSES:
        raise StaleAction(f"item {item.id} is not decided yet: the annotators still have it")
    tie = item.status == ItemStatus.disputed
    if label is None:
        if tie:
            raise DecisionError(f"item {item.id} is a tie: choose a label to settle it")
        label = item.current_label
    same = label == item.current_label
    event = LabelEvent(
        item_id=item.id,
        user_id=reviewer.id,
        source=EventSource.review,
        old_label=item.current_label,
        new_label=label,
        reason="settled a tie" if tie else ("approved" if same else "overridden"),
        idempotency_key=idempotency_key,
    )
    session.add(event)
    set_final(item, label, ItemStatus.reviewed)
    item.approved_by_id = reviewer.id
    session.flush()
    return DecisionOutcome(event, duplicate=False)


def relabel(
    session: Session,
    project: Project,
    item: Item,
    user: User,
    label: str,
    idempotency_key: str,
    note: str | None = None,
) -> DecisionOutcome:
    """A label given outside the queue (the API, the item page): on a pending item a decision
    like the queue's (a vote when the overlap is above 1); on a decided item, reviewers and
    admins override it, as on the review page. A retry (the same key) takes the path its first
    try took, whatever the item's status now: that first try may be what decided it."""
    first = session.scalar(
        select(LabelEvent.source).where(
            LabelEvent.user_id == user.id, LabelEvent.idempotency_key == idempotency_key
        )
    )
    if first is not None:
        as_review = first == EventSource.review
    else:
        as_review = item.status != ItemStatus.pending and can_review(user)
    if as_review:
        return review(session, project, item, user, idempotency_key, label)
    return decide(session, project, item, user, label, idempotency_key, note)
