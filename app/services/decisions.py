"""Annotators' decisions: votes, the final label by majority, and undo.

Every change is appended to ``label_events`` (nothing is deleted): ``annotator`` (a vote; with
overlap 1 it sets the label itself), ``consensus`` (the majority of n votes), ``undo``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.kinds.registry import BadAnnotation, spec_of
from app.models import Assignment, EventSource, Item, ItemStatus, LabelEvent, Project, User
from app.services.deciders import check_changeable, check_holder
from app.services.queue import (
    DecisionError,
    StaleAction,
    assignment,
    claim,
    key_reused,
    key_used_for_skip,
    lock_item,
    lock_user,
    overlap_of,
    record_standing,
    release,
    set_standing,
)


@dataclass
class DecisionOutcome:
    event: LabelEvent
    duplicate: bool


def earlier_event(
    session: Session, user: User, key: str, same: Callable[[LabelEvent], bool]
) -> LabelEvent | None:
    """The event ``user``'s key already made, if any: the same request repeated is a no-op.

    Keys are each user's own (another user's same key is another request). The key already
    used by this user for anything ``same`` does not accept (another action, item, label or
    note, or a skip) is a 422: answering with the first request's result would hide that the
    second one was not applied. The user's lock is taken first: a twin sent at the same moment
    (whichever action, table or item) is then either seen here or waits until this one ends."""
    lock_user(session, user)
    mine = (LabelEvent.user_id == user.id) & (LabelEvent.idempotency_key == key)
    event = session.scalar(select(LabelEvent).where(mine))
    if event is None:
        if key_used_for_skip(session, user, key):
            raise key_reused(key)
        return None
    if not same(event):
        raise key_reused(key)
    return event


def check_label(project: Project, item: Item, label: str) -> str:
    """The annotation ``label`` in its kind's canonical form, if the kind accepts it for this
    item (a class of the project's set; spans within the sentence, of the project's types);
    else a ``DecisionError`` saying why."""
    try:
        return spec_of(project).check(project.labels, item.payload or {}, label)
    except BadAnnotation as err:
        raise DecisionError(str(err)) from None


def set_final(item: Item, label: str | None, status: ItemStatus) -> None:
    item.gold_label = label
    if label is not None:
        item.current_label = label
    item.status = status
    item.leased_by_id, item.lease_expires_at = None, None


def votes(session: Session, item: Item) -> list[str]:
    """The labels of the votes stored for the item (what is not yet flushed is left out)."""
    with session.no_autoflush:
        return list(
            session.scalars(
                select(Assignment.label).where(
                    Assignment.item_id == item.id, Assignment.state == "done"
                )
            )
        )


def _settle(session: Session, project: Project, item: Item, vote: str) -> None:
    """Once n distinct annotators voted: the majority becomes the label; a tie goes to review.

    ``vote`` is the label being cast, not flushed yet: the item's lease and its final label
    then go out in one UPDATE."""
    n = overlap_of(project)
    cast = [*votes(session, item), vote]
    if len(cast) < n:
        return
    if n == 1:
        set_final(item, cast[0], ItemStatus.reviewed)
        return
    counts = Counter(cast).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        set_final(item, None, ItemStatus.disputed)
        return
    winner, count = counts[0]
    session.add(
        LabelEvent(
            item_id=item.id,
            source=EventSource.consensus,
            old_label=item.current_label,
            new_label=winner,
            reason=f"majority: {count} of {len(cast)} annotators",
        )
    )
    set_final(item, winner, ItemStatus.reviewed)


def decide(
    session: Session,
    project: Project,
    item: Item,
    user: User,
    label: str,
    idempotency_key: str,
    reason: str | None = None,
) -> DecisionOutcome:
    """Record ``user``'s label for a pending item; the same key again changes nothing.

    The first decision to arrive counts, lease or not (work done is not thrown away); a later
    one for an item already decided, or a second vote by the same annotator, is stale."""

    def same(event: LabelEvent) -> bool:
        request = (EventSource.annotator, item.id, label, reason or None)
        return (event.source, event.item_id, event.new_label, event.reason) == request

    earlier = earlier_event(session, user, idempotency_key, same)
    if earlier is not None:
        return DecisionOutcome(earlier, duplicate=True)
    label = check_label(project, item, label)
    if item.project_id != project.id:
        raise DecisionError("item belongs to another project")
    check_changeable(item)
    lock_item(session, item)
    if item.status != ItemStatus.pending:
        raise StaleAction(
            f"item {item.id} was already decided ({item.status}); your label was not recorded"
        )
    mine = assignment(session, item, user)
    if mine is not None and mine.state == "done":
        raise StaleAction(f"you already labelled item {item.id}")
    check_holder(item, user)
    event = LabelEvent(
        item_id=item.id,
        user_id=user.id,
        source=EventSource.annotator,
        old_label=item.current_label,
        new_label=label,
        reason=reason or None,
        idempotency_key=idempotency_key,
    )
    session.add(event)
    record_standing(session, item, user, mine, "done", label=label)
    _settle(session, project, item, label)
    session.flush()
    return DecisionOutcome(event, duplicate=False)


def standing_votes(what: Any, project: Project, user: User) -> Select:
    """``select(what)`` over ``user``'s queue votes in ``project`` on items where the vote still
    stands: ``user``'s assignment is ``done`` (``decide`` sets it, ``undo`` reopens it). The
    queue's undo button and its "decided today" count must agree on what stands, so both
    build on this one query."""
    return (
        select(what)
        .join(Item, Item.id == LabelEvent.item_id)
        .join(
            Assignment,
            (Assignment.item_id == LabelEvent.item_id) & (Assignment.user_id == user.id),
        )
        .where(
            Item.project_id == project.id,
            LabelEvent.user_id == user.id,
            LabelEvent.source == EventSource.annotator,
            Assignment.state == "done",
        )
    )


def last_decision(session: Session, project: Project, user: User) -> LabelEvent | None:
    """``user``'s newest vote in the project that still stands (not undone)."""
    return session.scalar(
        standing_votes(LabelEvent, project, user).order_by(LabelEvent.id.desc()).limit(1)
    )


def undo(
    session: Session, project: Project, user: User, idempotency_key: str, lease_ttl_s: int
) -> DecisionOutcome:
    """Take back ``user``'s last decision: the item returns to its earlier label and status and
    to this annotator's hands; an ``undo`` event is appended. Refused once anybody else acted
    on the item after it (a later vote or a review)."""

    def same(event: LabelEvent) -> bool:
        undone_here = session.get(Item, event.item_id).project_id == project.id
        return event.source == EventSource.undo and undone_here

    earlier = earlier_event(session, user, idempotency_key, same)
    if earlier is not None:
        return DecisionOutcome(earlier, duplicate=True)
    target = last_decision(session, project, user)
    if target is None:
        raise StaleAction("nothing to undo: you have no decision left in this project")
    item = session.get(Item, target.item_id)
    lock_item(session, item)
    later = session.scalar(
        select(LabelEvent)
        .where(
            LabelEvent.item_id == item.id,
            LabelEvent.id > target.id,
            LabelEvent.source != EventSource.consensus,
        )
        .limit(1)
    )
    if later is not None:
        if later.user_id == user.id:  # a reviewer who overrode their own vote
            raise StaleAction(f"cannot undo: you reviewed item {item.id} after labelling it")
        who = later.user.username if later.user else later.source
        raise StaleAction(f"cannot undo: {who} acted on item {item.id} after you")
    before = item.current_label
    if item.status != ItemStatus.pending:
        item.current_label = target.old_label
        item.approved_by_id = None
        set_final(item, None, ItemStatus.pending)
    set_standing(session, item, user, "open")
    event = LabelEvent(
        item_id=item.id,
        user_id=user.id,
        source=EventSource.undo,
        old_label=before,
        new_label=item.current_label,
        reason=f"undo of decision #{target.id} ({target.new_label})",
        idempotency_key=idempotency_key,
    )
    session.add(event)
    session.flush()
    release(session, project, user, keep=item.id)
    claim(session, item.id, user, lease_ttl_s)  # back in my hands, unless another holds it
    return DecisionOutcome(event, duplicate=False)


def history(session: Session, item: Item) -> list[LabelEvent]:
    return list(
        session.scalars(
            select(LabelEvent).where(LabelEvent.item_id == item.id).order_by(LabelEvent.id)
        )
    )
