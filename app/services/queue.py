"""The shared queue: who gets which item next, under a lease, and the two kinds of skip.

The lease is two columns on the item row (holder and expiry), claimed by a conditional UPDATE
that only succeeds while the item is free. PostgreSQL re-checks that condition after waiting
for the row lock and SQLite runs writers one at a time, so two annotators can never both win
the same item; ``SELECT ... FOR UPDATE SKIP LOCKED`` only keeps PostgreSQL callers from
queueing behind each other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, Select, Update, and_, exists, or_, select, update
from sqlalchemy.orm import Session

from app.models import (
    REVIEWABLE_KINDS,
    Assignment,
    Item,
    ItemStatus,
    LabelEvent,
    Project,
    User,
    utcnow,
)
from app.services.results import latest_model_version_id

OVERLAP_MAX = 20
CLAIM_ATTEMPTS = 100  # each lost claim means another annotator got an item: progress overall
SkipMode = Literal["later", "pass"]
SKIP_STATES: dict[str, str] = {"later": "skipped", "pass": "passed"}


class DecisionError(ValueError):
    """The request cannot apply as sent (bad label, wrong project...): a 422."""


class StaleAction(DecisionError):
    """The item moved on since the page was drawn (decided by others, nothing to undo): a 409."""


def key_reused(key: str) -> DecisionError:
    """A user's idempotency key names one request: sent again with another action or payload,
    it is refused rather than answered with the first request's result."""
    return DecisionError(f"idempotency key {key} was already used for a different request")


def key_used_for_event(session: Session, user: User, key: str) -> bool:
    """Whether ``user``'s key already made a label event (a label, review or undo)."""
    mine = (LabelEvent.user_id == user.id) & (LabelEvent.idempotency_key == key)
    return session.scalar(select(exists().where(mine)))


def key_used_for_skip(session: Session, user: User, key: str) -> bool:
    """Whether ``user``'s key already made a skip (stored on the user's assignment)."""
    mine = (Assignment.user_id == user.id) & (Assignment.idempotency_key == key)
    return session.scalar(select(exists().where(mine)))


class QueueBusy(RuntimeError):
    pass


def overlap_of(project: Project) -> int:
    """How many distinct annotators label each item (project setting, default 1)."""
    return int(project.settings.get("overlap") or 1)


def set_overlap(project: Project, overlap: int) -> None:
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 1 <= overlap <= OVERLAP_MAX:
        raise DecisionError(f"overlap must be a whole number from 1 to {OVERLAP_MAX}")
    project.settings = {**project.settings, "overlap": overlap}


def assignment(session: Session, item: Item, user: User) -> Assignment | None:
    return session.scalar(
        select(Assignment).where(Assignment.item_id == item.id, Assignment.user_id == user.id)
    )


def _free_for(user: User, now: datetime) -> ColumnElement[bool]:
    return or_(
        Item.leased_by_id.is_(None), Item.leased_by_id == user.id, Item.lease_expires_at <= now
    )


def _mine(user: User, states: tuple[str, ...]) -> ColumnElement[bool]:
    return exists().where(
        Assignment.item_id == Item.id, Assignment.user_id == user.id, Assignment.state.in_(states)
    )


def _queued(project: Project) -> ColumnElement[bool]:
    return and_(
        Item.project_id == project.id,
        Item.dataset_kind.in_([k.value for k in REVIEWABLE_KINDS]),
        Item.status == ItemStatus.pending,
    )


def _candidates(session: Session, project: Project, user: User, now: datetime) -> list[Select]:
    """The queries for ``user``'s next item, in turn: fresh ones by suspicion, then the ones
    they deferred."""
    base = select(Item.id).where(_queued(project), _free_for(user, now))
    if latest_model_version_id(session, project.id) is not None:  # only what it ranked
        base = base.where(Item.queue_rank.is_not(None))
        by_rank = (Item.queue_rank, Item.id)
    else:
        by_rank = (Item.id,)
    fresh = base.where(~_mine(user, ("skipped", "passed", "done"))).order_by(*by_rank)
    deferred = base.join(
        Assignment,
        and_(
            Assignment.item_id == Item.id,
            Assignment.user_id == user.id,
            Assignment.state == "skipped",
        ),
    ).order_by(Assignment.updated_at, *by_rank)
    return [fresh, deferred]


def _candidate(session: Session, project: Project, user: User, now: datetime) -> int | None:
    """The best free item for ``user`` (SQLite: the claim follows as its own statement)."""
    for query in _candidates(session, project, user, now):
        found = session.scalar(query.limit(1))
        if found is not None:
            return found
    return None


def _take_best(session: Session, project: Project, user: User, lease_ttl_s: int) -> Item | None:
    """PostgreSQL: pick the best free item and lease it in one statement, ``UPDATE ... WHERE
    id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING``: one round trip where a
    separate pick, claim and reload took three, and annotators skip each other's locked rows
    instead of queueing behind them. The lease conditions are checked again on the locked row.

    Only when that finds nothing does a second pass wait for the locks: the rows may all be
    locked by a model version's ranks being written (``results.rank_queue``), and "nothing
    left" would then be wrong."""
    now = utcnow()
    for skip_locked in (True, False):
        for query in _candidates(session, project, user, now):
            pick = query.with_for_update(skip_locked=skip_locked, of=Item).limit(1)
            item = session.scalar(
                _lease(pick.scalar_subquery(), user, lease_ttl_s, now)
                .returning(Item)
                .execution_options(synchronize_session=False, populate_existing=True)
            )
            if item is not None:
                return item
    return None


def _lease(
    item_id: int | ColumnElement[int], user: User, lease_ttl_s: int, now: datetime
) -> Update:
    """The UPDATE that leases the item to ``user``, only while it is pending and free."""
    return (
        update(Item)
        .where(Item.id == item_id, Item.status == ItemStatus.pending, _free_for(user, now))
        .values(
            leased_by_id=user.id,
            lease_expires_at=now + timedelta(seconds=lease_ttl_s),
            updated_at=Item.updated_at,  # a lease is not a change to the item
        )
    )


def claim(session: Session, item_id: int, user: User, lease_ttl_s: int) -> bool:
    """Lease the item to ``user`` if it is pending and free; False when someone else won it."""
    result = session.execute(
        _lease(item_id, user, lease_ttl_s, utcnow()).execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def release(session: Session, project: Project, user: User, keep: int | None = None) -> None:
    """Give back every lease ``user`` holds in the project (but ``keep``)."""
    query = update(Item).where(Item.project_id == project.id, Item.leased_by_id == user.id)
    if keep is not None:
        query = query.where(Item.id != keep)
    session.execute(
        query.values(
            leased_by_id=None, lease_expires_at=None, updated_at=Item.updated_at
        ).execution_options(synchronize_session=False)
    )


def held_item(session: Session, project: Project, user: User) -> Item | None:
    """The item ``user`` holds a live lease on, if it still needs them (a reload shows it)."""
    return session.scalar(
        select(Item)
        .where(
            _queued(project),
            Item.leased_by_id == user.id,
            Item.lease_expires_at > utcnow(),
            ~_mine(user, ("skipped", "passed", "done")),
        )
        .limit(1)
    )


def next_item(session: Session, project: Project, user: User, lease_ttl_s: int) -> Item | None:
    """The item ``user`` works on now, leased to them: the one they hold, else the most
    suspicious free one they have not labelled or passed. Without a model yet the queue
    falls back to upload order. The caller commits."""
    held = held_item(session, project, user)
    if held is not None and claim(session, held.id, user, lease_ttl_s):  # renew
        return session.get(Item, held.id, populate_existing=True)
    release(session, project, user)
    if session.get_bind().dialect.name == "postgresql":
        return _take_best(session, project, user, lease_ttl_s)
    for _ in range(CLAIM_ATTEMPTS):
        item_id = _candidate(session, project, user, utcnow())
        if item_id is None:
            return None
        if claim(session, item_id, user, lease_ttl_s):
            return session.get(Item, item_id, populate_existing=True)
    raise QueueBusy(f"no free item after {CLAIM_ATTEMPTS} attempts; try again")


def lock_item(session: Session, item: Item) -> None:
    """Take the item's row lock (PostgreSQL) or the write lock (SQLite) and reload it, so the
    checks that follow see the latest state and no other decision interleaves. One round trip:
    the UPDATE returns the row, and reading it overwrites the loaded object (populate_existing
    applies only to rows read from the result)."""
    session.execute(
        update(Item)
        .where(Item.id == item.id)
        .values(updated_at=Item.updated_at)
        .returning(Item)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).scalars().one()


def lock_user(session: Session, user: User) -> None:
    """Serialize ``user``'s keyed actions: taken before the idempotency-key lookup, so that a
    twin request (same key) waits here and then sees what the first one stored.

    A label's key lives in ``label_events`` and a skip's in ``assignments``: no unique key spans
    both, and two items lock different rows, so only a lock on the user orders them. PostgreSQL
    takes the user's row lock (``FOR NO KEY UPDATE``: it still lets other sessions insert rows
    that reference the user); SQLite needs a write for its one writer lock, and the reads that
    follow (outside any transaction until then) see the latest commit. One user acts one step
    at a time anyway: the lock costs one statement, and nobody else waits on it."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(User.id).where(User.id == user.id).with_for_update(key_share=True))
    else:
        session.execute(
            update(User)
            .where(User.id == user.id)
            .values(role=User.role)
            .execution_options(synchronize_session=False)
        )


def set_standing(
    session: Session,
    item: Item,
    user: User,
    state: str,
    label: str | None = None,
    key: str | None = None,
) -> Assignment:
    """Create or update this annotator's standing with the item."""
    held = record_standing(session, item, user, assignment(session, item, user), state, label, key)
    session.flush()
    return held


def record_standing(
    session: Session,
    item: Item,
    user: User,
    held: Assignment | None,
    state: str,
    label: str | None = None,
    key: str | None = None,
) -> Assignment:
    """``set_standing`` for a caller that has already looked up ``held`` (None: there is no
    standing yet); not flushed, so that the item's other changes go out in the same UPDATE."""
    if held is None:
        held = Assignment(item_id=item.id, user_id=user.id, state=state)
        session.add(held)
    held.state, held.label, held.updated_at = state, label, utcnow()
    if key is not None:
        held.idempotency_key = key
    if item.leased_by_id == user.id:
        item.leased_by_id, item.lease_expires_at = None, None
    return held


def skip(session: Session, item: Item, user: User, mode: SkipMode, idempotency_key: str) -> bool:
    """``later``: back of my queue; ``pass``: never to me again. Others keep it either way.

    Returns False when this key was already used for this skip (nothing changes)."""
    if mode not in SKIP_STATES:
        raise DecisionError(f"unknown skip mode '{mode}' (known: {', '.join(SKIP_STATES)})")
    lock_user(session, user)
    mine = (Assignment.user_id == user.id) & (Assignment.idempotency_key == idempotency_key)
    earlier = session.scalar(select(Assignment).where(mine))
    if earlier is not None:
        # Another item, or the other mode while the standing is still the skip's (once labelled
        # or undone, the mode it had is gone: the repeat is taken as the same skip).
        other_mode = earlier.state in SKIP_STATES.values() and earlier.state != SKIP_STATES[mode]
        if earlier.item_id != item.id or other_mode:
            raise key_reused(idempotency_key)
        return False
    if key_used_for_event(session, user, idempotency_key):
        raise key_reused(idempotency_key)
    lock_item(session, item)
    held = assignment(session, item, user)
    if held is not None and held.state == "done":
        raise StaleAction(f"you already labelled item {item.id}; undo it first")
    from app.services.deciders import check_may_decide  # deciders imports this module

    check_may_decide(item, user)
    set_standing(session, item, user, SKIP_STATES[mode], key=idempotency_key)
    return True
