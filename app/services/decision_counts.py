"""What counts as a decision and as a correction: one definition for every count.

The label history is append-only, so an undo does not delete the vote it takes back; it adds an
``undo`` event after it. Every count of decisions (the dashboard's annotator table and curves)
and of corrections (the retraining policy, the model versions table, the project page) must
therefore leave out the events a later undo took back, or a label, its undo and a relabel count
as two corrections. The conditions here are SQL expressions on ``LabelEvent`` so each count stays
one query.

- a *decision* stands: any event but an import or an undo, not taken back by a later undo;
- a *person's* decision is one with an author (``annotator`` or ``review``; ``consensus`` is the
  majority the votes made, authored by nobody);
- a *correction* is a decision that changed the item's label.

Which events an undo takes back: an annotator can undo only their own last vote on an item, and
only while nobody else acted on the item after it (consensus aside), so votes and undos of one
annotator on one item alternate: a vote is undone exactly when the same annotator undid on the
same item later. A consensus is undone by any later undo on its item (the undo of a vote that
made the majority sends the item back to pending). A review is never followed by an undo.
A ``bulk`` event (one item's share of a reviewer's bulk change) is undone with its whole group:
the group row's ``undone_at`` says so, and queue undos never touch it.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, or_
from sqlalchemy.orm import aliased

from app.models import EventSource, LabelEvent, LabelGroup

NOT_DECISIONS = (EventSource.imported, EventSource.undo, EventSource.bulk_undo)
PERSON_SOURCES = (EventSource.annotator, EventSource.review, EventSource.bulk)
QUEUE_SOURCES = (EventSource.annotator, EventSource.consensus)  # what a queue undo takes back


def undone() -> ColumnElement[bool]:
    """True for a ``LabelEvent`` that a later undo took back: a queue vote (or the consensus it
    made) by a later queue undo, a bulk event by the undo of its group."""
    later = aliased(LabelEvent, name="undo_event")
    by_queue_undo = LabelEvent.source.in_(QUEUE_SOURCES) & exists().where(
        later.item_id == LabelEvent.item_id,
        later.source == EventSource.undo,
        later.id > LabelEvent.id,
        or_(LabelEvent.source == EventSource.consensus, later.user_id == LabelEvent.user_id),
    )
    by_group_undo = exists().where(
        LabelGroup.id == LabelEvent.group_id,
        LabelEvent.source == EventSource.bulk,
        LabelGroup.undone_at.is_not(None),
    )
    return by_queue_undo | by_group_undo


def stands() -> ColumnElement[bool]:
    """A decision that stands: not an import or undo event, and not undone since."""
    return LabelEvent.source.not_in(NOT_DECISIONS) & ~undone()


def person_decision() -> ColumnElement[bool]:
    """An annotator's vote or a reviewer's decision that stands (the dashboard's decisions)."""
    return LabelEvent.source.in_(PERSON_SOURCES) & ~undone()


def is_correction() -> ColumnElement[bool]:
    """A decision that stands and changed the label: a confirmation leaves the training set as
    it was, so retraining on it would only repeat the last model."""
    return stands() & or_(
        LabelEvent.old_label.is_(None), LabelEvent.old_label != LabelEvent.new_label
    )
