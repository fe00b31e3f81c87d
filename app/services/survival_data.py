"""What a survival training job reads: each training record's covariates and current follow-up,
and the gold dev records; the counterpart of ``tagging_data`` for sequence tagging."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.kinds.survival.formats import FIELDS_KEY
from app.models import DatasetKind, Item, Project
from app.services.training_data import (
    NotEnoughData,
    gold_rows,
    label_event_watermark,
    training_rows,
)

Fields = list[list[str]]  # [[column, raw value], ...] as uploaded


@dataclass
class SurvivalData:
    train_ids: list[int]
    train_fields: list[Fields]
    train_labels: list[str]  # the annotation strings the model learns from (the snapshot)
    dev_ids: list[int]
    dev_fields: list[Fields]
    dev_labels: list[str]
    label_event_watermark: int


def load_survival_data(session: Session, project: Project) -> SurvivalData:
    """The training records with their current follow-up and the gold dev records, in id order;
    ``NotEnoughData`` when a Cox model cannot be fitted (fewer than two records or no event)."""
    watermark = label_event_watermark(session, project)
    train = training_rows(session, project, Item.payload, Item.current_label)
    dev = gold_rows(session, project, DatasetKind.gold_dev, Item.payload, Item.gold_label)
    if len(train) < 2 or not any(row.current_label.endswith(" 1") for row in train):
        raise NotEnoughData(
            "training needs at least two records and one observed event; upload a dataset first"
        )
    return SurvivalData(
        train_ids=[row.id for row in train],
        train_fields=[row.payload.get(FIELDS_KEY, []) for row in train],
        train_labels=[row.current_label for row in train],
        dev_ids=[row.id for row in dev],
        dev_fields=[row.payload.get(FIELDS_KEY, []) for row in dev],
        dev_labels=[row.gold_label for row in dev],
        label_event_watermark=watermark,
    )
