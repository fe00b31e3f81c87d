"""What a training job reads from the database: the current labels and the gold dev set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from app.models import (
    REVIEWABLE_KINDS,
    TRAINING_KINDS,
    DatasetKind,
    Item,
    ItemStatus,
    LabelEvent,
    Project,
)


@dataclass
class TrainingData:
    labels: list[str]
    train_ids: list[int]
    train_texts: list[str]
    train_y: list[int]
    dev_ids: list[int]
    dev_texts: list[str]
    dev_y: list[int]
    test_ids: list[int]
    test_texts: list[str]
    test_y: list[int]
    label_event_watermark: int
    # per training item: silver no annotator has decided yet (what pruning may leave out)
    train_unreviewed_silver: list[bool] = field(default_factory=list)


class NotEnoughData(ValueError):
    pass


def label_event_watermark(session: Session, project: Project) -> int:
    """The project's newest label event id: a model version learned every change up to it."""
    return int(
        session.scalar(
            select(func.coalesce(func.max(LabelEvent.id), 0))
            .join(Item, Item.id == LabelEvent.item_id)
            .where(Item.project_id == project.id)
        )
        or 0
    )


def training_rows(session: Session, project: Project, *columns: Any) -> Sequence[Row]:
    """Every labelled item of the training sets (id first, then ``columns``), in id order."""
    return session.execute(
        select(Item.id, *columns)
        .where(
            Item.project_id == project.id,
            Item.dataset_kind.in_([k.value for k in TRAINING_KINDS]),
            Item.current_label.is_not(None),
        )
        .order_by(Item.id)
    ).all()


def gold_rows(
    session: Session, project: Project, kind: DatasetKind, *columns: Any
) -> Sequence[Row]:
    """Every item of a gold set (dev or test) with a gold label, id first, in id order."""
    return session.execute(
        select(Item.id, *columns)
        .where(
            Item.project_id == project.id,
            Item.dataset_kind == kind.value,
            Item.gold_label.is_not(None),
        )
        .order_by(Item.id)
    ).all()


def load_training_data(session: Session, project: Project) -> TrainingData:
    labels = list(project.labels)
    index = {label: i for i, label in enumerate(labels)}
    watermark = label_event_watermark(session, project)
    train = training_rows(
        session, project, Item.text, Item.current_label, Item.dataset_kind, Item.status
    )
    dev, test = (
        gold_rows(session, project, kind, Item.text, Item.gold_label)
        for kind in (DatasetKind.gold_dev, DatasetKind.test)
    )
    silver_kinds = {kind.value for kind in REVIEWABLE_KINDS}
    present = {row.current_label for row in train}
    if len(present) < 2:
        raise NotEnoughData("training needs items of at least two labels; upload a dataset first")
    return TrainingData(
        labels=labels,
        train_ids=[row.id for row in train],
        train_texts=[row.text for row in train],
        train_y=[index[row.current_label] for row in train],
        dev_ids=[row.id for row in dev],
        dev_texts=[row.text for row in dev],
        dev_y=[index[row.gold_label] for row in dev],
        test_ids=[row.id for row in test],
        test_texts=[row.text for row in test],
        test_y=[index[row.gold_label] for row in test],
        label_event_watermark=int(watermark or 0),
        train_unreviewed_silver=[
            row.dataset_kind in silver_kinds and row.status != ItemStatus.reviewed for row in train
        ],
    )
