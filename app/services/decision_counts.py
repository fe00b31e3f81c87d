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
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, or_
from sqlalchemy.orm import aliased

from app.models import LabelEvent

NOT_DECISIONS = ("import", "undo")
PERSON_SOURCES = ("annotator", "review")


def undone() -> ColumnElement[bool]:
    """True for a ``LabelEvent`` that a later undo took back."""
    later = aliased(LabelEvent, name="undo_event")
    return exists().where(
        later.item_id == LabelEvent.item_id,
        later.source == "undo",
        later.id > LabelEvent.id,
        or_(LabelEvent.source == "consensus", later.user_id == LabelEvent.user_id),
    )


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
