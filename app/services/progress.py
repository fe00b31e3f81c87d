"""The queue's progress line: what I decided today, what is left, and how many wrong labels the
items left probably still hold.

Counts follow what stands now: a decision that was undone is neither "decided today" nor a
correction (the item is pending again, with the label it had).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlalchemy import case, distinct, func, select
from sqlalchemy.orm import Session

from app.models import REVIEWABLE_KINDS, Item, ItemStatus, LabelEvent, Project, User
from app.services.decisions import standing_votes

BANDS = 10  # suspicion-rank deciles
MIN_BAND_REVIEWS = 10  # fewer reviews in a band than this: the band uses the overall rate


@dataclass(frozen=True)
class BandCounts:
    """One suspicion band (0: the most suspicious tenth; None: items no model ranked)."""

    band: int | None
    pending: int = 0
    reviewed: int = 0
    corrected: int = 0


@dataclass(frozen=True)
class QueueProgress:
    decided_today: int  # items I labelled since midnight UTC whose decision still stands
    left: int  # pending items in the project's queue (silver and extension)
    reviewed: int  # items with a final label
    corrected: int  # of those, how many now differ from their silver label
    wrong_left: float | None  # estimate; None before any item was reviewed ("unknown yet")


def band_counts(session: Session, project: Project) -> list[BandCounts]:
    """Pending, reviewed and corrected items per decile of the newest version's suspicion rank
    (``Item.queue_rank``, 1 = most suspicious; band = (rank - 1) * 10 // highest rank)."""
    reviewable = (Item.project_id == project.id) & Item.dataset_kind.in_(
        [k.value for k in REVIEWABLE_KINDS]
    )
    top = session.scalar(select(func.max(Item.queue_rank)).where(reviewable)) or 1
    band = ((Item.queue_rank - 1) * BANDS // top).label("band")
    corrected = case(
        (
            (Item.status == ItemStatus.reviewed)
            & Item.current_label.is_distinct_from(Item.silver_label),
            1,
        ),
        else_=0,
    )
    rows = session.execute(
        select(band, Item.status, func.count(), func.sum(corrected))
        .where(reviewable, Item.status.in_([ItemStatus.pending, ItemStatus.reviewed]))
        .group_by(band, Item.status)
    )
    found: dict[int | None, dict[str, int]] = {}
    for band_no, status, count, n_corrected in rows:
        counts = found.setdefault(band_no, {"pending": 0, "reviewed": 0, "corrected": 0})
        if status == ItemStatus.pending:
            counts["pending"] += count
        else:
            counts["reviewed"] += count
            counts["corrected"] += int(n_corrected or 0)
    ordered = sorted(found, key=lambda b: (b is None, b or 0))
    return [BandCounts(b, **found[b]) for b in ordered]


def estimate_wrong_left(bands: list[BandCounts]) -> float | None:
    """How many pending items probably carry a wrong label.

    The review history says how often the ranking's bands held wrong labels: in each
    suspicion decile, the share of reviewed items whose label was corrected (final label not
    the silver one). That share, applied to the band's pending items and summed over the
    bands, is the estimate: the ranking puts most wrong labels at the top, so a flat rate over
    the whole queue would overstate what is left once the top is done. A band with fewer than
    MIN_BAND_REVIEWS reviews (or items no model ranked) uses the overall correction rate
    instead: a handful of reviews would set its rate by chance. With fewer than
    MIN_BAND_REVIEWS reviews in all there is nothing to estimate from: None ("unknown yet");
    six corrections out of six reviews would otherwise call every pending item wrong."""
    reviewed = sum(b.reviewed for b in bands)
    if reviewed < MIN_BAND_REVIEWS:
        return None
    overall = sum(b.corrected for b in bands) / reviewed
    total = 0.0
    for b in bands:
        ranked_and_known = b.band is not None and b.reviewed >= MIN_BAND_REVIEWS
        rate = b.corrected / b.reviewed if ranked_and_known else overall
        total += b.pending * rate
    return total


def decided_today(session: Session, project: Project, user: User, now: datetime) -> int:
    """Items of the project ``user`` labelled in the queue since midnight UTC and has not
    undone (labelled, undone and labelled again: one)."""
    midnight = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    return session.scalar(
        standing_votes(func.count(distinct(LabelEvent.item_id)), project, user).where(
            LabelEvent.created_at >= midnight
        )
    )


def queue_progress(session: Session, project: Project, user: User, now: datetime) -> QueueProgress:
    """The progress line for ``user`` in ``project`` at ``now``."""
    bands = band_counts(session, project)
    return QueueProgress(
        decided_today=decided_today(session, project, user, now),
        left=sum(b.pending for b in bands),
        reviewed=sum(b.reviewed for b in bands),
        corrected=sum(b.corrected for b in bands),
        wrong_left=estimate_wrong_left(bands),
    )
