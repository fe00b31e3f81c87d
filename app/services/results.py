"""Model versions and their per-item results: written by the worker, read by pages and API."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.orm import Session, aliased, joinedload

from app.models import (
    DatasetKind,
    EventSource,
    Influencer,
    Item,
    LabelEvent,
    ModelVersion,
    Prediction,
    Project,
    Score,
)

INSERT_CHUNK = 5000


@dataclass
class PredictionRow:
    item_id: int
    label: str
    confidence: float
    suggested_label: str | None
    suspicion_rank: int | None  # None for held-out items, which are not ranked
    focus: str | None = None  # the part of the item the rank is about (``Prediction.focus``)


@dataclass
class ItemResults:
    """Rows of one model version; plain Python values so this module needs no numpy."""

    predictions: Sequence[PredictionRow]
    scores: Sequence[tuple[int, str, float]]  # (item id, kind, value)
    evidence: Sequence[tuple[int, int, str, int, float]]  # (target id, train id, role, rank, value)
    # the training snapshot: each training item's label as the model learned it (item id ->
    # label); without it the evidence rows record no training or target label
    train_labels: Mapping[int, str] | None = None
    # per evidence row, (train label, target label) to store instead of the snapshot's: the
    # segments a sequence-tagging row is about (``start:end:TYPE`` in each sentence)
    evidence_labels: Sequence[tuple[str, str]] | None = None


def _bulk(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), INSERT_CHUNK):
        session.execute(insert(table), rows[start : start + INSERT_CHUNK])


def store_model_version(
    session: Session,
    *,
    project_id: int,
    job_id: int,
    artifact_path: str,
    estimator: str,
    metrics: dict[str, Any],
    label_event_watermark: int,
    results: ItemResults,
) -> ModelVersion:
    """Write a model version and its rows; rerunning the same job replaces, never duplicates."""
    previous = session.scalar(select(ModelVersion).where(ModelVersion.job_id == job_id))
    if previous is not None:
        for table in (Prediction, Score, Influencer):
            session.execute(delete(table).where(table.model_version_id == previous.id))
        version_number = previous.version
        session.delete(previous)
        session.flush()
    else:
        latest = session.scalar(
            select(func.max(ModelVersion.version)).where(ModelVersion.project_id == project_id)
        )
        version_number = (latest or 0) + 1
    version = ModelVersion(
        project_id=project_id,
        job_id=job_id,
        version=version_number,
        artifact_path=artifact_path,
        estimator=estimator,
        metrics=metrics,
        label_event_watermark=label_event_watermark,
    )
    session.add(version)
    session.flush()
    _bulk(
        session,
        Prediction,
        [{"model_version_id": version.id, **row.__dict__} for row in results.predictions],
    )
    _bulk(
        session,
        Score,
        [
            {"model_version_id": version.id, "item_id": item_id, "kind": kind, "value": value}
            for item_id, kind, value in results.scores
        ],
    )
    snapshot = results.train_labels or {}
    suggested = {row.item_id: row.suggested_label for row in results.predictions}

    def labels(target: int, train: int, role: str) -> tuple[str | None, str | None]:
        # proponents are the suggestion's supporters; the others are about the target's own
        # training label
        return snapshot.get(train), suggested.get(target) if role == "proponent" else (
            snapshot.get(target)
        )

    given = results.evidence_labels
    _bulk(
        session,
        Influencer,
        [
            {
                "model_version_id": version.id,
                "target_item_id": target,
                "train_item_id": train,
                "role": role,
                "rank": rank,
                "value": value,
                **dict(
                    zip(
                        ("train_label", "target_label"),
                        given[n] if given is not None else labels(target, train, role),
                        strict=True,
                    )
                ),
            }
            for n, (target, train, role, rank, value) in enumerate(results.evidence)
        ],
    )
    return version


def rank_queue(session: Session, project_id: int, version_id: int) -> None:
    """Copy the version's suspicion ranks onto the project's items, where the queue's index
    reads them (None for an item the version did not rank).

    Run it last in the version's transaction: on PostgreSQL the rows it changes stay locked
    until the commit, and the queue waits for them (``queue._take_best``). Only rows whose rank
    changes are written."""
    rank = (
        select(Prediction.suspicion_rank)
        .where(Prediction.model_version_id == version_id, Prediction.item_id == Item.id)
        .scalar_subquery()
    )
    session.execute(
        update(Item)
        .where(Item.project_id == project_id, Item.queue_rank.is_distinct_from(rank))
        .values(queue_rank=rank, updated_at=Item.updated_at)  # not a change to the item
        .execution_options(synchronize_session=False)
    )


def _newest(project_id: int) -> Select:
    return (
        select(ModelVersion)
        .where(ModelVersion.project_id == project_id)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )


def latest_model_version(session: Session, project_id: int) -> ModelVersion | None:
    return session.scalar(_newest(project_id))


def latest_model_version_id(session: Session, project_id: int) -> int | None:
    """Only the id, for the queue's hot path: the version's metrics can be large."""
    return session.scalar(_newest(project_id).with_only_columns(ModelVersion.id))


def item_scores(
    session: Session, version_id: int, item_ids: Sequence[int]
) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {i: {} for i in item_ids}
    rows = session.execute(
        select(Score.item_id, Score.kind, Score.value).where(
            Score.model_version_id == version_id, Score.item_id.in_(list(item_ids))
        )
    )
    for item_id, kind, value in rows:
        out[item_id][kind] = value
    return out


@dataclass
class Evidence:
    """One training item in an evidence list, with what the model learned from it.

    ``train_label`` is its label in the version's training snapshot (None: not recorded, for
    versions stored before migration 0008); ``current_label`` its label now (``label`` is the
    same, kept for API clients), and when the two differ ``changed_by``/``changed_at`` name the
    newest label event since the training (its user, or its source when no user made it).
    ``label_source`` says where the trained-on label came from: gold (a gold training set),
    reviewed (an annotator's or reviewer's decision before the training) or silver.
    ``target_label`` is the label whose loss on the target item ``value`` is about;
    ``strength`` is |value| relative to the strongest in the same list (1.0 = strongest)."""

    item_id: int
    text: str
    label: str | None
    role: str
    rank: int
    value: float
    train_label: str | None = None
    current_label: str | None = None
    label_source: str = "silver"
    changed_by: str | None = None
    changed_at: datetime | None = None
    target_label: str | None = None
    strength: float = 0.0
    # whether the item's label now still holds what the model learned from it (its kind's
    # ``holds``: the same class; the same span still in the sentence)
    still_holds: bool = True
    target_words: str | None = None  # target_label as its kind shows it (None: as it is)

    effect: str = field(init=False)  # the value in words, for people and API clients alike

    def __post_init__(self) -> None:
        self.effect = effect_in_words(self.value, self.target_words or self.target_label)

    @property
    def changed(self) -> bool:
        return self.train_label is not None and not self.still_holds


def effect_in_words(value: float, target_label: str | None) -> str:
    """What leaving the item out of training would do to the target's loss, in words."""
    on = f" of '{target_label}'" if target_label else ""
    if value == 0:
        return f"removing it would not change this item's loss{on}"
    verb = "raise" if value > 0 else "lower"
    return f"removing it would {verb} this item's loss{on} by {plain_number(abs(value))}"


def plain_number(value: float, digits: int = 2) -> str:
    """``value`` to ``digits`` significant digits without an exponent (0.0072, not 7.2e-03):
    influence values are small, and a reader should not need to decode scientific notation."""
    if value == 0 or not math.isfinite(value):
        return str(value)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


REVIEW_SOURCES = (
    EventSource.annotator,
    EventSource.consensus,
    EventSource.review,
    EventSource.bulk,
)
_TRAIN_ITEM = aliased(Item)  # built once: aliasing per call cost more than the query itself


def evidence_for(session: Session, version_id: int, item_id: int) -> list[Evidence]:
    """The item's evidence lists (supporters, opposers, proponents) in the given version, each
    training item with its trained-on label, its label now, and who changed it since."""
    train = _TRAIN_ITEM
    rows = session.execute(
        select(Influencer, train.text, train.current_label, train.dataset_kind)
        .join(train, train.id == Influencer.train_item_id)
        .where(Influencer.model_version_id == version_id, Influencer.target_item_id == item_id)
        .order_by(Influencer.role.desc(), Influencer.rank)
    ).all()
    if not rows:
        return []
    watermark = session.scalar(
        select(ModelVersion.label_event_watermark).where(ModelVersion.id == version_id)
    )
    events = _events_by_item(session, {inf.train_item_id for inf, *_ in rows})
    strongest: dict[str, float] = {}
    for inf, *_ in rows:
        strongest[inf.role] = max(strongest.get(inf.role, 0.0), abs(inf.value))
    # imported here: the registry imports the kinds' exporters, which read this module
    from app.kinds.registry import spec_of

    target = session.get(Item, item_id)
    spec = spec_of(session.get(Project, target.project_id))
    out = []
    for inf, text, current, kind in rows:
        before, after = _split(events.get(inf.train_item_id, []), watermark or 0)
        entry = Evidence(
            inf.train_item_id,
            text,
            current,
            inf.role,
            inf.rank,
            inf.value,
            train_label=inf.train_label,
            current_label=current,
            label_source=_source(kind, inf.train_label, before, spec.holds),
            target_label=inf.target_label,
            strength=abs(inf.value) / strongest[inf.role] if strongest[inf.role] else 0.0,
            still_holds=inf.train_label is None or spec.holds(current, inf.train_label),
            target_words=spec.describe(inf.target_label, target.payload or {})
            if inf.target_label
            else None,
        )
        if entry.changed and after:
            last = after[-1]
            entry.changed_by = last.user.username if last.user else last.source
            entry.changed_at = last.created_at
        out.append(entry)
    return out


def _events_by_item(session: Session, item_ids: set[int]) -> dict[int, list[LabelEvent]]:
    found: dict[int, list[LabelEvent]] = {}
    for event in session.scalars(
        select(LabelEvent)
        .options(joinedload(LabelEvent.user))
        .where(LabelEvent.item_id.in_(item_ids))
        .order_by(LabelEvent.id)
    ):
        found.setdefault(event.item_id, []).append(event)
    return found


def _split(events: list[LabelEvent], watermark: int) -> tuple[list[LabelEvent], list[LabelEvent]]:
    """Events the training saw (id up to the version's watermark) and those after it."""
    return [e for e in events if e.id <= watermark], [e for e in events if e.id > watermark]


def _source(
    kind: str, train_label: str | None, seen: list[LabelEvent], holds: Callable[..., bool]
) -> str:
    """gold for a gold training set; reviewed when the newest event the training saw is a
    decision that set the trained-on label (an undo, or a vote that did not settle, is not);
    silver otherwise."""
    if kind == DatasetKind.gold_train:
        return "gold"
    if seen and seen[-1].source in REVIEW_SOURCES and holds(seen[-1].new_label, train_label):
        return "reviewed"
    return "silver"
