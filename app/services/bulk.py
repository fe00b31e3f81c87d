"""Bulk relabel: a reviewer sets one label on several items in one action, after a preview,
and can take the whole change back. ``change`` generalises "one label": each item's new
annotation computed from its current one (a sequence-tagging group fix retypes one surface
string's spans in every sentence); the group then records the change's description.

Each changed item gets a ``bulk`` label event carrying the group and the status it had, so the
change is as traceable as single decisions and its undo restores every item exactly. The change
is all or nothing: an item of a trusted set, or one that moved on since the preview the reviewer
confirmed, refuses the whole action, so a half-applied change never has to be explained.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.models import (
    EventSource,
    Item,
    ItemStatus,
    LabelEvent,
    LabelGroup,
    Project,
    Role,
    User,
    utcnow,
)
from app.services.deciders import NotAllowed, check_changeable
from app.services.decisions import check_label, set_final
from app.services.queue import DecisionError, StaleAction, lock_item, lock_user

Snapshot = tuple[str | None, str]  # (current label, status): what the preview showed
Change = Callable[[Item], str]  # an item's new annotation, from the item as it is


@dataclass(frozen=True)
class PreviewRow:
    item: Item
    new_label: str
    changes: bool  # False: it already has the label and a reviewer's approval
    refused: str | None  # why the item cannot be part of a bulk change

    @property
    def snapshot(self) -> Snapshot:
        return self.item.current_label, self.item.status


def _items(session: Session, project: Project, item_ids: Sequence[int]) -> list[Item]:
    """The project's items by id, in id order; an unknown id (or another project's) is an
    error naming it, and so is a selection over the limit."""
    ids = sorted(set(item_ids))
    limit = get_settings().bulk_max_items
    if not ids:
        raise DecisionError("items: select at least one item")
    if len(ids) > limit:
        raise DecisionError(f"items: {len(ids)} selected; one bulk change takes at most {limit}")
    found = session.scalars(
        select(Item).where(Item.project_id == project.id, Item.id.in_(ids)).order_by(Item.id)
    ).all()
    missing = sorted(set(ids) - {item.id for item in found})
    if missing:
        raise DecisionError(f"items: {', '.join(map(str, missing[:10]))} not in this project")
    return list(found)


def _is_settled(item: Item, label: str) -> bool:
    return (
        item.current_label == label
        and item.status == ItemStatus.reviewed
        and item.approved_by_id is not None
    )


def _row(project: Project, item: Item, change: Change) -> PreviewRow:
    label = check_label(project, item, change(item))
    try:
        check_changeable(item)
    except NotAllowed as err:
        return PreviewRow(item, label, changes=False, refused=str(err))
    return PreviewRow(item, label, changes=not _is_settled(item, label), refused=None)


def _same_label(label: str) -> Change:
    return lambda item: label


def preview(
    session: Session,
    project: Project,
    item_ids: Sequence[int],
    label: str,
    change: Change | None = None,
) -> list[PreviewRow]:
    """What setting ``label`` (or applying ``change``) on these items would do, item by item;
    changes nothing."""
    change = change or _same_label(label)
    return [_row(project, item, change) for item in _items(session, project, item_ids)]


def relabel_many(
    session: Session,
    project: Project,
    user: User,
    item_ids: Sequence[int],
    label: str,
    idempotency_key: str,
    note: str | None = None,
    expected: Mapping[int, Snapshot] | None = None,
    change: Change | None = None,
) -> LabelGroup:
    """Set ``label`` (or apply ``change``) on the items as a reviewer's final decision, one
    ``bulk`` event per item it changes. ``expected``: each item's (label, status) as the
    confirmed preview showed it; an item that differs now makes the whole change stale. The
    same key again returns the group it made."""
    lock_user(session, user)
    earlier = session.scalar(
        select(LabelGroup).where(
            LabelGroup.user_id == user.id, LabelGroup.idempotency_key == idempotency_key
        )
    )
    if earlier is not None:
        if (earlier.project_id, earlier.label) != (project.id, label):
            raise DecisionError(
                f"idempotency key {idempotency_key} was already used for a different request"
            )
        return earlier
    items = _items(session, project, item_ids)
    rows = {row.item.id: row for row in preview(session, project, item_ids, label, change)}
    refused = [item for item in items if rows[item.id].refused]
    if refused:
        names = ", ".join(item.external_id for item in refused[:10])
        raise NotAllowed(f"items {names} are in a trusted set: change them by re-importing")
    for item in items:
        lock_item(session, item)
    if expected is not None:
        _check_unchanged(items, expected)
    changing = [item for item in items if rows[item.id].changes]
    if not changing:
        raise DecisionError(f"nothing to change: every selected item is already {label}")
    group = LabelGroup(
        project_id=project.id,
        user_id=user.id,
        label=label,
        note=note or None,
        item_count=len(changing),
        idempotency_key=idempotency_key,
    )
    session.add(group)
    session.flush()
    for item in changing:
        new_label = rows[item.id].new_label
        session.add(
            LabelEvent(
                item_id=item.id,
                user_id=user.id,
                source=EventSource.bulk,
                old_label=item.current_label,
                new_label=new_label,
                old_status=item.status,
                reason=note or f"bulk change #{group.id}",
                group_id=group.id,
            )
        )
        set_final(item, new_label, ItemStatus.reviewed)
        item.approved_by_id = user.id
    session.flush()
    return group


def _check_unchanged(items: Iterable[Item], expected: Mapping[int, Snapshot]) -> None:
    moved = [
        item
        for item in items
        if item.id not in expected or expected[item.id] != (item.current_label, item.status)
    ]
    if moved:
        names = ", ".join(f"{i.external_id} (now {i.current_label}, {i.status})" for i in moved)
        raise StaleAction(f"changed since the preview: {names}; preview again")


def undo_group(session: Session, project: Project, user: User, group_id: int) -> LabelGroup:
    """Take a bulk change back: every item it changed returns to its earlier label and status
    (decided ones return to the review list), with a ``bulk_undo`` event each. Only its author
    or an admin may; refused as a whole when anybody acted on one of its items since. Undoing
    an undone group changes nothing (a double submission)."""
    group = session.get(LabelGroup, group_id)
    if group is None or group.project_id != project.id:
        raise DecisionError(f"bulk change {group_id} not found in this project")
    if group.user_id != user.id and user.role != Role.admin:
        raise NotAllowed(f"bulk change {group_id} is not yours: its author or an admin undoes it")
    lock_user(session, user)
    session.refresh(group)
    if group.undone_at is not None:
        return group
    events = session.scalars(
        select(LabelEvent)
        .where(LabelEvent.group_id == group.id, LabelEvent.source == EventSource.bulk)
        .order_by(LabelEvent.item_id)
    ).all()
    later = (
        session.execute(
            select(Item.external_id)
            .join(LabelEvent, LabelEvent.item_id == Item.id)
            .where(
                LabelEvent.item_id.in_([e.item_id for e in events]),
                LabelEvent.id > min(e.id for e in events),
                (LabelEvent.group_id != group.id) | LabelEvent.group_id.is_(None),
                LabelEvent.source != EventSource.consensus,
            )
            .distinct()
        )
        .scalars()
        .all()
    )
    if later:
        names = ", ".join(sorted(later)[:10])
        raise StaleAction(f"cannot undo bulk change {group.id}: items {names} changed since")
    for event in events:
        item = session.get(Item, event.item_id)
        lock_item(session, item)
        _restore(session, item, event, user, group)
    group.undone_at, group.undone_by_id = utcnow(), user.id
    session.flush()
    return group


def _restore(
    session: Session, item: Item, event: LabelEvent, user: User, group: LabelGroup
) -> None:
    before = item.current_label
    status = ItemStatus(event.old_status or ItemStatus.pending)
    item.current_label = event.old_label
    set_final(item, event.old_label if status == ItemStatus.reviewed else None, status)
    item.approved_by_id = None
    session.add(
        LabelEvent(
            item_id=item.id,
            user_id=user.id,
            source=EventSource.bulk_undo,
            old_label=before,
            new_label=item.current_label,
            old_status=ItemStatus.reviewed,
            reason=f"undo of bulk change #{group.id}",
            group_id=group.id,
        )
    )


def group_items(session: Session, group: LabelGroup) -> list[Item]:
    """The items a bulk change changed, in id order (what its undo put back)."""
    changed = select(LabelEvent.item_id).where(
        LabelEvent.group_id == group.id, LabelEvent.source == EventSource.bulk
    )
    return list(session.scalars(select(Item).where(Item.id.in_(changed)).order_by(Item.id)))
