"""What changed between model versions: corrections it learnt from, F1, the queue's order.

The worker records the comparison once, when it stores a version (the queue as it was then
is gone later); pages and the API read it back with the version's metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.models import REVIEWABLE_KINDS, Item, ItemStatus, ModelVersion, Prediction
from app.services.retraining import corrections_between

COMPARISON_KEY = "since_previous"
QUEUE_TOP = 50  # "new in the top": how many of the queue's first items were not there before


@dataclass
class VersionSummary:
    """One row of the model versions table."""

    version: int
    created_at: datetime
    estimator: str
    n_train: int | None
    dev_macro_f1: float | None
    test_macro_f1: float | None
    silver_left_out: int | None  # unreviewed silver the dev-chosen pruned model left out
    dev_macro_f1_left_out: float | None
    test_macro_f1_left_out: float | None
    corrections: int | None  # corrections since the previous version (None: the first)
    queue_moved: int | None  # pending items whose queue position changed
    queue_compared: int | None  # pending items ranked by both versions
    new_in_top: int | None  # of the first ``top`` items, how many were not there before
    top: int | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _queue_positions(version_id: int):
    """The pending queue under one version: item id and 1-based position, as a subquery."""
    return (
        select(
            Prediction.item_id,
            func.row_number().over(order_by=(Prediction.suspicion_rank, Item.id)).label("pos"),
        )
        .join(Item, Item.id == Prediction.item_id)
        .where(
            Prediction.model_version_id == version_id,
            Prediction.suspicion_rank.is_not(None),
            Item.status == ItemStatus.pending,
            Item.dataset_kind.in_([k.value for k in REVIEWABLE_KINDS]),
        )
        .subquery()
    )


def _top(session: Session, version_id: int, n: int) -> set[int]:
    positions = _queue_positions(version_id)
    return set(session.scalars(select(positions.c.item_id).where(positions.c.pos <= n)))


def compare(session: Session, previous: ModelVersion, current: ModelVersion) -> dict[str, int]:
    """How ``current`` differs from ``previous`` on the items pending now."""
    old, new = _queue_positions(previous.id), _queue_positions(current.id)
    moved_one = case((old.c.pos != new.c.pos, 1), else_=0)
    joined = select(func.count(), func.sum(moved_one)).join_from(
        old, new, old.c.item_id == new.c.item_id
    )
    compared, moved = session.execute(joined).one()
    top_new = _top(session, current.id, QUEUE_TOP)
    return {
        "previous_version": previous.version,
        "corrections": corrections_between(
            session,
            current.project_id,
            previous.label_event_watermark,
            current.label_event_watermark,
        ),
        "queue_compared": int(compared or 0),
        "queue_moved": int(moved or 0),
        "new_in_top": len(top_new - _top(session, previous.id, QUEUE_TOP)),
        "top": len(top_new),
    }


def record_comparison(session: Session, current: ModelVersion) -> None:
    """Store the comparison with the version before (the worker calls this after storing)."""
    previous = session.scalar(
        select(ModelVersion)
        .where(
            ModelVersion.project_id == current.project_id,
            ModelVersion.version < current.version,
        )
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )
    if previous is not None:
        current.metrics = {**current.metrics, COMPARISON_KEY: compare(session, previous, current)}
        session.flush()


def version_history(session: Session, project_id: int) -> list[VersionSummary]:
    """Every version of a project, newest first, with what changed since the one before."""
    versions = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.project_id == project_id)
        .order_by(ModelVersion.version.desc())
    )
    out = []
    for v in versions:
        metrics, since = v.metrics, v.metrics.get(COMPARISON_KEY) or {}
        out.append(
            VersionSummary(
                version=v.version,
                created_at=v.created_at,
                estimator=v.estimator,
                n_train=metrics.get("n_train"),
                dev_macro_f1=metrics.get("dev_macro_f1"),
                test_macro_f1=metrics.get("test_macro_f1"),
                silver_left_out=metrics.get("silver_left_out"),
                dev_macro_f1_left_out=metrics.get("dev_macro_f1_left_out"),
                test_macro_f1_left_out=metrics.get("test_macro_f1_left_out"),
                corrections=since.get("corrections"),
                queue_moved=since.get("queue_moved"),
                queue_compared=since.get("queue_compared"),
                new_in_top=since.get("new_in_top"),
                top=since.get("top"),
            )
        )
    return out
