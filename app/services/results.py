"""Model versions and their per-item results: written by the worker, read by pages and API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from app.models import Influencer, Item, ModelVersion, Prediction, Score

INSERT_CHUNK = 5000


@dataclass
class PredictionRow:
    item_id: int
    label: str
    confidence: float
    suggested_label: str | None
    suspicion_rank: int | None  # None for held-out items, which are not ranked


@dataclass
class ItemResults:
    """Rows of one model version; plain Python values so this module needs no numpy."""

    predictions: Sequence[PredictionRow]
    scores: Sequence[tuple[int, str, float]]  # (item id, kind, value)
    evidence: Sequence[tuple[int, int, str, int, float]]  # (target id, train id, role, rank, value)


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
            }
            for target, train, role, rank, value in results.evidence
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
    item_id: int
    text: str
    label: str | None
    role: str
    rank: int
    value: float


_TRAIN_ITEM = aliased(Item)  # built once: aliasing per call cost more than the query itself


def evidence_for(session: Session, version_id: int, item_id: int) -> list[Evidence]:
    train = _TRAIN_ITEM
    rows = session.execute(
        select(Influencer, train.text, train.current_label)
        .join(train, train.id == Influencer.train_item_id)
        .where(Influencer.model_version_id == version_id, Influencer.target_item_id == item_id)
        .order_by(Influencer.role.desc(), Influencer.rank)
    ).all()
    return [
        Evidence(inf.train_item_id, text, label, inf.role, inf.rank, inf.value)
        for inf, text, label in rows
    ]
