"""The admin dashboard's numbers, each computed by one query from the database as it is now.

Definitions (the README repeats them):

- a *decision* is a label event by a person, ``annotator`` (a vote) or ``review``, that stands
  (a vote taken back by an undo is none: ``decision_counts``);
- the *detection curve* follows the reviewed silver/extension items that have a reference
  label, in the order of their first decision, counting those whose silver label was wrong;
- *throughput* is decisions per hour of active time, where a pause longer than
  ``ASSAY_DASHBOARD_IDLE_GAP_S`` between two decisions counts as a break, not work;
- *accuracy* is the share of decisions on items with a reference label that agree with it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.models import (
    REVIEWABLE_KINDS,
    Item,
    ItemStatus,
    LabelEvent,
    ModelVersion,
    Project,
    User,
)
from app.services.decision_counts import person_decision

F1_METRICS = (("dev_macro_f1", "dev"), ("test_macro_f1", "test"))


@dataclass
class Detection:
    points: list[tuple[int, int]]  # (items reviewed, wrong silver labels among them), from (0, 0)
    known: int  # reviewable items with a reference label
    wrong: int  # of which the silver label differs from the reference

    @property
    def reviewed(self) -> int:
        return self.points[-1][0]

    @property
    def found(self) -> int:
        return self.points[-1][1]

    @property
    def base_rate(self) -> float | None:
        """The share of wrong labels a random order would find."""
        return self.wrong / self.known if self.known else None


@dataclass
class VersionF1:
    version: int
    created_at: datetime
    decisions: int  # decisions the version's training labels include
    f1: dict[str, float]  # "dev" / "test" macro-F1, where measured


@dataclass
class LabelCount:
    label: str
    silver: int
    final: int


@dataclass
class AnnotatorStats:
    username: str
    decisions: int
    active_hours: float
    per_hour: float | None  # None until two decisions give a time span
    checked: int  # decisions on items with a reference label
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.checked if self.checked else None


def _reviewable(project: Project):
    return (
        Item.project_id == project.id,
        Item.dataset_kind.in_([k.value for k in REVIEWABLE_KINDS]),
    )


def detection(session: Session, project: Project) -> Detection:
    first = (
        select(LabelEvent.item_id, func.min(LabelEvent.id).label("first_id"))
        .where(person_decision())
        .group_by(LabelEvent.item_id)
        .subquery()
    )
    wrong_flags = session.scalars(
        select(Item.silver_label != Item.reference_label)
        .join(first, first.c.item_id == Item.id)
        .where(
            *_reviewable(project),
            Item.reference_label.is_not(None),
            Item.status == ItemStatus.reviewed,
        )
        .order_by(first.c.first_id)
    ).all()
    points, found = [(0, 0)], 0
    for n, wrong in enumerate(wrong_flags, start=1):
        found += bool(wrong)
        points.append((n, found))
    known, wrong = session.execute(
        select(
            func.count(),
            func.coalesce(
                func.sum(case((Item.silver_label != Item.reference_label, 1), else_=0)), 0
            ),
        ).where(*_reviewable(project), Item.reference_label.is_not(None))
    ).one()
    return Detection(points, int(known), int(wrong))


def _decisions_up_to(session: Session, project: Project, event_id: int) -> int:
    return session.scalar(
        select(func.count())
        .select_from(LabelEvent)
        .join(Item, Item.id == LabelEvent.item_id)
        .where(
            Item.project_id == project.id,
            person_decision(),
            LabelEvent.id <= event_id,
        )
    )


def f1_by_version(session: Session, project: Project) -> list[VersionF1]:
    """Macro-F1 on dev and test of every model version, with the decisions it learnt from."""
    versions = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.project_id == project.id)
        .order_by(ModelVersion.version)
    )
    return [
        VersionF1(
            v.version,
            v.created_at,
            _decisions_up_to(session, project, v.label_event_watermark),
            {name: v.metrics[key] for key, name in F1_METRICS if v.metrics.get(key) is not None},
        )
        for v in versions
    ]


def label_distribution(session: Session, project: Project) -> list[LabelCount]:
    """Over the silver and extension items: the label uploaded against the label now."""
    counts = {label: LabelCount(label, 0, 0) for label in project.labels}
    for column, attr in ((Item.silver_label, "silver"), (Item.current_label, "final")):
        rows = session.execute(
            select(column, func.count()).where(*_reviewable(project)).group_by(column)
        )
        for label, n in rows:
            if label is not None:
                row = counts.setdefault(label, LabelCount(label, 0, 0))
                setattr(row, attr, int(n))
    return list(counts.values())


def annotators(session: Session, project: Project, idle_gap_s: float) -> list[AnnotatorStats]:
    rows = session.execute(
        select(User.username, LabelEvent.created_at, LabelEvent.new_label, Item.reference_label)
        .join(LabelEvent, LabelEvent.user_id == User.id)
        .join(Item, Item.id == LabelEvent.item_id)
        .where(Item.project_id == project.id, person_decision())
        .order_by(User.username, LabelEvent.created_at, LabelEvent.id)
    ).all()
    by_user: dict[str, list] = defaultdict(list)
    for row in rows:
        by_user[row.username].append(row)
    out = []
    for username, events in by_user.items():
        times = [e.created_at for e in events]
        active_s = sum(min((b - a).total_seconds(), idle_gap_s) for a, b in pairwise(times))
        checked = [e for e in events if e.reference_label is not None]
        out.append(
            AnnotatorStats(
                username=username,
                decisions=len(events),
                active_hours=active_s / 3600,
                per_hour=(len(events) - 1) / (active_s / 3600) if active_s > 0 else None,
                checked=len(checked),
                correct=sum(e.new_label == e.reference_label for e in checked),
            )
        )
    return out
