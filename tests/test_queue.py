"""The shared queue's services on SQLite and PostgreSQL: leases under concurrency, overlap and
majority, agreement, skips, undo, review, and repeated or stale submissions."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.support import demo_rows, to_csv

ITEMS = 40
PASSWORD = "long enough password"


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def world(backend):
    """A migrated database with a 40-item silver project, eight annotators and a reviewer."""
    from app.core.auth import create_user
    from app.core.db import migrate, session_scope
    from app.models import DatasetKind, Role
    from app.services.datasets import import_dataset
    from app.services.projects import create_project

    migrate()
    with session_scope() as s:
        project = create_project(s, "queue", ["fresh", "rotten"])
        import_dataset(s, project, to_csv(demo_rows(ITEMS)), "silver.csv", DatasetKind.silver)
        users = [create_user(s, f"ann{i}", PASSWORD, Role.annotator) for i in range(8)]
        reviewer = create_user(s, "rita", PASSWORD, Role.reviewer)
        return {"project": project.id, "users": [u.id for u in users], "reviewer": reviewer.id}


@pytest.fixture
def db(world):
    from app.core.db import new_session

    session = new_session()
    yield session
    session.rollback()
    session.close()


def load(db, world, n_users: int = 2):
    from app.models import Project, User

    project = db.get(Project, world["project"])
    return project, [db.get(User, i) for i in world["users"][:n_users]]


def take(db, project, user, ttl: int = 600):
    from app.services.queue import next_item

    item = next_item(db, project, user, ttl)
    db.commit()
    return item


def vote(db, project, item, user, label: str, idem: str | None = None):
    from app.services.decisions import decide

    outcome = decide(db, project, item, user, label, idem or key())
    db.commit()
    return outcome


def other(label: str) -> str:
    return "rotten" if label == "fresh" else "fresh"


def test_threads_hammering_next_item_never_share_a_lease(world):
    """Eight annotators, each on its own connection, take and decide items as fast as they can:
    every item is leased to exactly one of them, and no decision is refused as stale."""
    from app.core.db import new_session
    from app.models import Project, User
    from app.services.decisions import decide
    from app.services.queue import next_item

    taken: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(world["users"]))
    guard = threading.Lock()

    def annotate(user_id: int) -> None:
        session = new_session()
        try:
            project = session.get(Project, world["project"])
            user = session.get(User, user_id)
            start.wait()
            while (item := next_item(session, project, user, 600)) is not None:
                session.commit()
                with guard:
                    taken.append((item.id, user_id))
                decide(session, project, item, user, item.current_label, key())
                session.commit()
        except BaseException as err:
            errors.append(err)
        finally:
            session.close()

    threads = [threading.Thread(target=annotate, args=(u,)) for u in world["users"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    item_ids = [item_id for item_id, _ in taken]
    assert len(item_ids) == ITEMS and len(set(item_ids)) == ITEMS
    assert len({user_id for _, user_id in taken}) > 1  # they really worked side by side


def test_a_decision_on_an_item_decided_since_it_was_loaded_is_stale(db, world):
    """Two sessions load the same pending item; the first decides and commits. The second
    sees the decision once it takes the item's lock: its label is refused, not added."""
    from app.core.db import new_session
    from app.models import Item, ItemStatus, LabelEvent, Project, User
    from app.services.decisions import decide
    from app.services.queue import StaleAction

    project, (a, b) = load(db, world)
    item = take(db, project, a)
    other_session = new_session()
    try:
        loaded = other_session.get(Item, item.id)  # b's request loaded it: still pending
        assert loaded.status == ItemStatus.pending
        vote(db, project, item, a, "fresh")
        with pytest.raises(StaleAction, match="already decided"):
            decide(
                other_session,
                other_session.get(Project, project.id),
                loaded,
                other_session.get(User, b.id),
                "rotten",
                key(),
            )
        other_session.rollback()
    finally:
        other_session.close()
    events = db.scalars(select(LabelEvent).where(LabelEvent.item_id == item.id)).all()
    assert [(e.source, e.new_label) for e in events if e.source != "import"] == [
        ("annotator", "fresh")
    ]


def test_next_item_waits_for_locked_rows_instead_of_answering_empty(db, world):
    """PostgreSQL: while another transaction holds every item's row lock (a model version's
    ranks being written), the next-item call waits for it rather than saying nothing is left."""
    from app.core.db import new_session
    from app.models import Item, Project, User
    from app.services.queue import next_item

    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("row locks and SKIP LOCKED are PostgreSQL's; SQLite has one writer")
    project, (a,) = load(db, world, 1)
    writer = new_session()
    writer.execute(
        update(Item).where(Item.project_id == project.id).values(queue_rank=Item.queue_rank)
    )  # every row locked until the commit
    got: list = []

    def ask() -> None:
        session = new_session()
        try:
            got.append(
                next_item(session, session.get(Project, project.id), session.get(User, a.id), 600)
            )
            session.commit()
        finally:
            session.close()

    asker = threading.Thread(target=ask)
    asker.start()
    asker.join(timeout=1.0)
    assert asker.is_alive() and got == [], "it waits for the locks, it does not answer"
    writer.commit()
    writer.close()
    asker.join(timeout=30)
    assert got and got[0] is not None, "after the commit it gets an item"


def test_two_annotators_hold_different_items_and_a_reload_keeps_mine(db, world):
    project, (a, b) = load(db, world)
    first_a, first_b = take(db, project, a), take(db, project, b)
    assert first_a.id != first_b.id
    assert take(db, project, a).id == first_a.id  # a reload shows the item I hold
    assert first_a.leased_by_id == a.id and first_b.leased_by_id == b.id


def expire_lease(db, item) -> None:
    """Move ``item``'s lease a second into the past and commit, as if its holder had gone
    away: what the lease tests start from, without waiting out a real TTL."""
    from app.models import Item, utcnow

    db.execute(
        update(Item)
        .where(Item.id == item.id)
        .values(lease_expires_at=utcnow() - timedelta(seconds=1))
    )
    db.commit()


def test_an_expired_lease_returns_the_item(db, world):
    project, (a, b) = load(db, world)
    held = take(db, project, a)
    expire_lease(db, held)
    again = take(db, project, b)
    assert again.id == held.id and again.leased_by_id == b.id
    # a's late decision is refused: b holds the item now (it was a's only while nobody took it)
    from app.services.deciders import NotHolder

    with pytest.raises(NotHolder, match=f"you do not hold item {held.id}"):
        vote(db, project, held, a, "fresh")
    db.rollback()
    vote(db, project, held, b, "rotten")
    db.commit()


def test_a_late_decision_counts_while_nobody_else_took_the_item(db, world):
    from app.models import Item, ItemStatus

    project, (a, _) = load(db, world)
    held = take(db, project, a)
    expire_lease(db, held)
    vote(db, project, held, a, "fresh")  # work done is not thrown away
    db.commit()
    assert db.get(Item, held.id).status == ItemStatus.reviewed


def test_overlap_two_keeps_the_item_for_a_second_annotator_and_ties_go_to_review(db, world):
    from app.models import ItemStatus, LabelEvent
    from app.services.queue import set_overlap
    from app.services.reviews import awaiting_review

    project, (a, b, c) = load(db, world, 3)
    set_overlap(project, 2)
    db.commit()
    item = take(db, project, a)
    vote(db, project, item, a, "fresh")
    assert item.status == ItemStatus.pending and item.leased_by_id is None
    assert take(db, project, a).id != item.id  # never given twice to the same annotator
    assert take(db, project, b).id == item.id  # still first in line for the others
    vote(db, project, item, b, "fresh")
    assert (item.status, item.gold_label) == (ItemStatus.reviewed, "fresh")
    events = db.scalars(select(LabelEvent).where(LabelEvent.item_id == item.id)).all()
    assert [e.source for e in events] == ["annotator", "annotator", "consensus"]
    # the item is done: c never gets it
    for _ in range(3):
        shown = take(db, project, c)
        assert shown.id != item.id
        vote(db, project, shown, c, "rotten")

    tied = take(db, project, a)
    vote(db, project, tied, a, "fresh")
    assert take(db, project, b).id == tied.id
    vote(db, project, tied, b, "rotten")
    assert tied.status == ItemStatus.disputed and tied.gold_label is None
    rows = awaiting_review(db, project, 50)
    assert rows[0].item.id == tied.id  # ties first
    assert rows[0].votes == [("ann0", "fresh"), ("ann1", "rotten")]


def test_overlap_three_takes_the_majority(db, world):
    from app.models import ItemStatus
    from app.services.queue import set_overlap

    project, users = load(db, world, 3)
    set_overlap(project, 3)
    db.commit()
    item = take(db, project, users[0])
    for user, label in zip(users, ["rotten", "fresh", "rotten"], strict=True):
        assert take(db, project, user).id == item.id
        vote(db, project, item, user, label)
    assert (item.status, item.current_label, item.gold_label) == (
        ItemStatus.reviewed,
        "rotten",
        "rotten",
    )


def test_agreement_kappa_and_alpha_match_hand_computed_values(db, world):
    """Two annotators on four items: A f f r r, B f r r r. Observed agreement 3/4, chance
    1/2, so kappa = 0.5; alpha (nominal) = 1 - 7 * 2 / (2 * 3 * 5) = 8/15."""
    from app.services.agreement import agreement
    from app.services.queue import set_overlap

    project, (a, b) = load(db, world)
    assert agreement(db, project).alpha is None  # nothing shared yet
    set_overlap(project, 2)
    db.commit()
    pairs = [("fresh", "fresh"), ("fresh", "rotten"), ("rotten", "rotten"), ("rotten", "rotten")]
    for first, second in pairs:
        item = take(db, project, a)
        vote(db, project, item, a, first)
        assert take(db, project, b).id == item.id
        vote(db, project, item, b, second)
    found = agreement(db, project)
    assert (found.items, found.annotators) == (4, 2)
    assert found.alpha == pytest.approx(8 / 15)
    assert [(p.a, p.b, p.items) for p in found.pairs] == [("ann0", "ann1", 4)]
    assert found.pairs[0].kappa == pytest.approx(0.5)


def test_skip_for_later_and_pass_to_others(db, world):
    from app.models import Assignment
    from app.services.queue import skip

    project, (a, b) = load(db, world)
    first = take(db, project, a)
    later = key()
    assert skip(db, first, a, "later", later) is True
    db.commit()
    stamp = db.scalar(select(Assignment.updated_at).where(Assignment.idempotency_key == later))
    assert skip(db, first, a, "later", later) is False  # sent twice: nothing changes
    db.commit()
    assert db.scalar(select(Assignment.updated_at).where(Assignment.idempotency_key == later)) == (
        stamp
    )
    assert take(db, project, b).id == first.id  # the others keep it
    second = take(db, project, a)
    assert second.id != first.id
    skip(db, second, a, "pass", key())
    db.commit()
    seen = set()
    while (item := take(db, project, a)) is not None and item.id not in seen:
        seen.add(item.id)
        if item.id != first.id:
            vote(db, project, item, a, "fresh")
    # back of my queue: first comes back once everything else is done (b holds it now, so
    # only after b lets it go); the passed one never comes back to me
    assert second.id not in seen
    skip(db, first, b, "pass", key())
    db.commit()
    assert take(db, project, a).id == first.id


def test_undo_restores_the_item_and_appends_to_its_history(db, world):
    from app.models import ItemStatus
    from app.services.decisions import history, undo
    from app.services.queue import StaleAction

    project, (a,) = load(db, world, 1)
    one = take(db, project, a)
    vote(db, project, one, a, other(one.silver_label))
    two = take(db, project, a)
    vote(db, project, two, a, other(two.silver_label))
    three = take(db, project, a)  # held when I undo: it goes back to the pool
    undo_key = key()
    undone = undo(db, project, a, undo_key, 600)
    db.commit()
    assert undone.event.item_id == two.id and undone.duplicate is False
    db.refresh(two)
    assert (two.status, two.current_label, two.gold_label) == (
        ItemStatus.pending,
        two.silver_label,
        None,
    )
    assert take(db, project, a).id == two.id  # back in my hands
    assert undo(db, project, a, undo_key, 600).duplicate is True  # U pressed twice
    assert [(e.source, e.new_label) for e in history(db, two)] == [
        ("annotator", other(two.silver_label)),
        ("undo", two.silver_label),
    ]
    db.refresh(three)
    assert three.leased_by_id is None
    undo(db, project, a, key(), 600)  # the decision before that
    db.commit()
    db.refresh(one)
    assert one.status == ItemStatus.pending
    with pytest.raises(StaleAction, match="nothing to undo"):
        undo(db, project, a, key(), 600)
    db.rollback()


def test_undo_is_refused_once_a_reviewer_acted(db, world):
    from app.models import User
    from app.services.decisions import undo
    from app.services.queue import StaleAction
    from app.services.reviews import review

    project, (a,) = load(db, world, 1)
    rita = db.get(User, world["reviewer"])
    item = take(db, project, a)
    vote(db, project, item, a, "fresh")
    review(db, project, item, rita, key())
    db.commit()
    with pytest.raises(StaleAction, match="rita acted"):
        undo(db, project, a, key(), 600)
    db.rollback()
    own = take(db, project, rita)  # a reviewer who labels, then overrides her own vote
    vote(db, project, own, rita, "fresh")
    review(db, project, own, rita, key(), "rotten")
    db.commit()
    with pytest.raises(StaleAction, match=f"you reviewed item {own.id} after labelling it"):
        undo(db, project, rita, key(), 600)
    db.rollback()


def test_reviewer_approves_overrides_and_settles_ties(db, world):
    from app.models import ItemStatus, User
    from app.services.decisions import history
    from app.services.queue import DecisionError, StaleAction, set_overlap
    from app.services.reviews import awaiting_review, review

    project, (a, b) = load(db, world)
    rita = db.get(User, world["reviewer"])
    approved = take(db, project, a)
    vote(db, project, approved, a, "fresh")
    overridden = take(db, project, a)
    vote(db, project, overridden, a, "fresh")
    with pytest.raises(StaleAction, match="not decided yet"):
        review(db, project, take(db, project, a), rita, key())
    db.rollback()
    assert {r.item.id for r in awaiting_review(db, project, 50)} == {approved.id, overridden.id}

    review(db, project, approved, rita, key())
    override_key = key()
    review(db, project, overridden, rita, override_key, "rotten")
    db.commit()
    assert review(db, project, overridden, rita, override_key, "rotten").duplicate is True
    assert awaiting_review(db, project, 50) == []
    assert (overridden.current_label, overridden.gold_label, overridden.approved_by_id) == (
        "rotten",
        "rotten",
        rita.id,
    )
    last = history(db, overridden)[-1]
    assert (last.source, last.user_id, last.old_label, last.new_label) == (
        "review",
        rita.id,
        "fresh",
        "rotten",
    )
    assert history(db, approved)[-1].reason == "approved"

    set_overlap(project, 2)
    db.commit()
    tie = take(db, project, a)
    vote(db, project, tie, a, "fresh")
    assert take(db, project, b).id == tie.id
    vote(db, project, tie, b, "rotten")
    with pytest.raises(DecisionError, match="tie"):
        review(db, project, tie, rita, key())
    db.rollback()
    review(db, project, tie, rita, key(), "rotten")
    db.commit()
    assert (tie.status, tie.gold_label) == (ItemStatus.reviewed, "rotten")


def test_repeated_and_stale_submissions_change_nothing(db, world):
    from app.models import LabelEvent
    from app.services.queue import DecisionError, StaleAction

    project, (a, b) = load(db, world)
    item = take(db, project, a)
    same = key()
    first = vote(db, project, item, a, "fresh", same)
    again = vote(db, project, item, a, "fresh", same)
    assert again.duplicate is True and again.event.id == first.event.id
    with pytest.raises(StaleAction, match="already decided"):
        vote(db, project, item, b, "rotten")
    db.rollback()
    with pytest.raises(DecisionError, match="different request"):  # a's key, another item
        vote(db, project, take(db, project, a), a, "fresh", same)
    db.rollback()
    with pytest.raises(DecisionError, match="unknown label 'mouldy'"):
        vote(db, project, take(db, project, b), b, "mouldy")
    db.rollback()
    assert len(db.scalars(select(LabelEvent)).all()) == 1
    vote(db, project, take(db, project, b), b, "fresh", same)  # b's own key: not a's
    db.commit()
    assert len(db.scalars(select(LabelEvent)).all()) == 2


def test_the_same_decision_sent_twice_at_once_is_recorded_once(world):
    """Two requests with one key race on separate connections: one event, one vote."""
    from sqlalchemy.exc import IntegrityError

    from app.core.db import new_session
    from app.models import Assignment, Item, LabelEvent, Project, User
    from app.services.decisions import decide
    from app.services.queue import StaleAction, next_item

    setup = new_session()
    project = setup.get(Project, world["project"])
    user = setup.get(User, world["users"][0])
    item_id = next_item(setup, project, user, 600).id
    setup.commit()
    setup.close()
    same, start, outcomes = key(), threading.Barrier(2), []

    def send() -> None:
        session = new_session()
        try:
            start.wait()
            decide(
                session,
                session.get(Project, project.id),
                session.get(Item, item_id),
                session.get(User, user.id),
                "rotten",
                same,
            )
            session.commit()
            outcomes.append("ok")
        except (IntegrityError, StaleAction) as err:
            session.rollback()
            outcomes.append(type(err).__name__)
        finally:
            session.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check = new_session()
    assert len(check.scalars(select(LabelEvent)).all()) == 1
    assert len(check.scalars(select(Assignment).where(Assignment.state == "done")).all()) == 1
    assert "ok" in outcomes
    check.close()
