"""What a sequence-tagging training job reads: each sentence's tokens and current spans, and
the gold dev sentences; the counterpart of ``training_data`` for text classification."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.kinds.sequence_tagging.annotation import decode
from app.kinds.sequence_tagging.rows import TOKENS_KEY
from app.models import DatasetKind, Item, Project
from app.services.training_data import (
    NotEnoughData,
    gold_rows,
    label_event_watermark,
    training_rows,
)

SpanTuple = tuple[int, int, str]


@dataclass
class TaggingData:
    types: list[str]
    train_ids: list[int]
    train_tokens: list[list[str]]
    train_spans: list[list[SpanTuple]]
    train_labels: list[str]  # the annotation strings the spans came from (the snapshot)
    dev_ids: list[int]
    dev_tokens: list[list[str]]
    dev_spans: list[list[SpanTuple]]
    label_event_watermark: int


def _spans(value: str) -> list[SpanTuple]:
    return [(s.start, s.end, s.label) for s in decode(value)]


def load_tagging_data(session: Session, project: Project) -> TaggingData:
    """The training sentences with their current annotation and the gold dev sentences, in id
    order; ``NotEnoughData`` when there is nothing to learn a type from."""
    watermark = label_event_watermark(session, project)
    train = training_rows(session, project, Item.payload, Item.current_label)
    dev = gold_rows(session, project, DatasetKind.gold_dev, Item.payload, Item.gold_label)
    train_spans = [_spans(row.current_label) for row in train]
    if len(train) < 2 or not any(train_spans):
        raise NotEnoughData(
            "training needs at least two sentences and one entity; upload a dataset first"
        )
    return TaggingData(
        types=list(project.labels),
        train_ids=[row.id for row in train],
        train_tokens=[row.payload[TOKENS_KEY] for row in train],
        train_spans=train_spans,
        train_labels=[row.current_label for row in train],
        dev_ids=[row.id for row in dev],
        dev_tokens=[row.payload[TOKENS_KEY] for row in dev],
        dev_spans=[_spans(row.gold_label) for row in dev],
        label_event_watermark=watermark,
    )
