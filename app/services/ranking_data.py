"""What a ranking training job reads: each training judgment's query, features and current
grade, and the gold dev judgments; the counterpart of ``tagging_data``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.kinds.ranking.formats import FEATURES_KEY, QID_KEY
from app.models import DatasetKind, Item, Project
from app.services.training_data import (
    NotEnoughData,
    gold_rows,
    label_event_watermark,
    training_rows,
)


@dataclass
class RankingData:
    train_ids: list[int]
    train: list[tuple[str, dict[str, float], str]]  # (query id, features, current grade)
    dev: list[tuple[str, dict[str, float], str]]  # the gold dev judgments, gold grade
    label_event_watermark: int


def _judged(payload: dict[str, Any], grade: str) -> tuple[str, dict[str, float], str]:
    return payload[QID_KEY], payload[FEATURES_KEY], grade


def load_ranking_data(session: Session, project: Project) -> RankingData:
    """The training judgments and the gold dev ones, in id order; ``NotEnoughData`` when no
    query has a document graded above the lowest grade (nothing to order)."""
    watermark = label_event_watermark(session, project)
    train = training_rows(session, project, Item.payload, Item.current_label)
    dev = gold_rows(session, project, DatasetKind.gold_dev, Item.payload, Item.gold_label)
    if len(train) < 2 or not any(int(row.current_label) > 0 for row in train):
        raise NotEnoughData(
            "training needs at least two judgments, one graded above 0; upload a dataset first"
        )
    return RankingData(
        train_ids=[row.id for row in train],
        train=[_judged(row.payload, row.current_label) for row in train],
        dev=[_judged(row.payload, row.gold_label) for row in dev],
        label_event_watermark=watermark,
    )
