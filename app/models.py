"""ORM tables. Large arrays (embeddings, checkpoints) live in the artifact directory instead."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite hands back naive datetimes otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)
        dict[str, Any]: JSON,
        list[str]: JSON,
        datetime: UTCDateTime(),
    }


class Role(StrEnum):
    admin = "admin"
    annotator = "annotator"
    reviewer = "reviewer"  # approves or overrides the annotators' decisions


class DatasetKind(StrEnum):
    silver = "silver"  # labels to be checked; trains the model and feeds the queue
    extension = "extension"  # more silver data (InfFeed's extension set)
    gold_train = "gold_train"  # trusted training labels; trains the model, never queued
    gold_dev = "gold_dev"  # trusted labels the influence is measured against
    test = "test"  # held out for evaluation only


TRAINING_KINDS = (DatasetKind.silver, DatasetKind.extension, DatasetKind.gold_train)
REVIEWABLE_KINDS = (DatasetKind.silver, DatasetKind.extension)


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


ACTIVE_JOB_STATES = (JobState.queued, JobState.running)


class JobKind(StrEnum):
    """What a job does (``app.services.job_lease.leased_tasks`` runs each kind)."""

    train_score = "train_score"  # train on the current labels, score every training item
    import_dataset = "import"  # an upload over ASSAY_IMPORT_BACKGROUND_BYTES


class ItemStatus(StrEnum):
    pending = "pending"
    reviewed = "reviewed"
    disputed = "disputed"  # its annotators tied: a reviewer decides


class EventSource(StrEnum):
    """Who or what wrote a label event. ``bulk`` is one item's share of a reviewer's change to
    many items at once (a ``LabelGroup``); ``bulk_undo`` takes such a change back."""

    imported = "import"
    annotator = "annotator"
    consensus = "consensus"
    review = "review"
    undo = "undo"
    bulk = "bulk"
    bulk_undo = "bulk_undo"


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default=Role.annotator)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Part of every page session; raising it (logout, deactivation, role or password change)
    # ends all of the user's sessions at once.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Minted from a password (POST /auth/token): a new password revokes it, so a stolen
    # password's token dies with it. Tokens an admin made are managed one by one instead.
    minted_by_login: Mapped[bool] = mapped_column(default=False, server_default=false())
    user: Mapped[User] = relationship()


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (Index("uq_projects_name", "name", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    task_kind: Mapped[str] = mapped_column(String(40), default="text_classification")
    labels: Mapped[list[str]] = mapped_column(default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProjectMember(Base):
    """Who may see and work on a project (admins see every project without a row here)."""

    __tablename__ = "project_members"
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    source_filename: Mapped[str] = mapped_column(String(255))
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("dataset_id", "external_id"),
        Index("ix_items_project_kind", "project_id", "dataset_kind"),
        # The queue's order: pending items of a project by rank, decided ones out of the way.
        Index("ix_items_queue", "project_id", "status", "queue_rank", "id"),
        # the rest of an item's group (a ranking judgment's query) in one indexed lookup
        Index("ix_items_group", "project_id", "group_key"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    dataset_kind: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # items that belong together (a ranking judgment's query); None for kinds without groups
    group_key: Mapped[str | None] = mapped_column(String(200))
    silver_label: Mapped[str | None] = mapped_column(Text)
    gold_label: Mapped[str | None] = mapped_column(Text)
    # Known truth kept for evaluation (detection curves); never shown to annotators.
    reference_label: Mapped[str | None] = mapped_column(Text)
    current_label: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=ItemStatus.pending)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # The queue's lease lives on the item row: one holder at most, claimed by a conditional
    # UPDATE that is atomic on SQLite and PostgreSQL alike (app/services/queue.py).
    leased_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    # The newest model version's suspicion rank (1 = most suspicious), copied here when the
    # version is stored: ordering by the predictions table made every next item walk past all
    # the items already decided, slower with each label.
    queue_rank: Mapped[int | None] = mapped_column(Integer)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class LabelEvent(Base):
    """Append-only label history; the idempotency key makes a repeated submission a no-op.
    Keys are the user's own: another user's key never collides with them."""

    __tablename__ = "label_events"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_label_events_user_key"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(20))  # an EventSource
    old_label: Mapped[str | None] = mapped_column(Text)
    new_label: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # a bulk change's events: the group, and the status the item had (what its undo restores)
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("label_groups.id", ondelete="SET NULL"), index=True
    )
    old_status: Mapped[str | None] = mapped_column(String(20))
    user: Mapped[User | None] = relationship()


class LabelGroup(Base):
    """One bulk change: a reviewer set ``label`` on several items in one action. Its events
    (``label_events.group_id``) are undone together; ``undone_at`` marks that, so counting what
    stands is one lookup. The idempotency key is per user, as for single decisions."""

    __tablename__ = "label_groups"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_label_groups_user_key"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    label: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column()
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    user: Mapped[User | None] = relationship(foreign_keys=[user_id])


_ACTIVE_JOB = "state IN ('queued', 'running')"


class Job(Base):
    __tablename__ = "jobs"
    # One queued or running job per project and kind, enforced by the database (migration 0004).
    __table_args__ = (
        Index(
            "uq_jobs_one_active",
            "project_id",
            "kind",
            unique=True,
            postgresql_where=text(_ACTIVE_JOB),
            sqlite_where=text(_ACTIVE_JOB),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20), default=JobState.queued)
    stage: Mapped[str] = mapped_column(String(80), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    celery_id: Mapped[str | None] = mapped_column(String(80))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # Written by the worker while it runs the job; a stale one means the worker is gone
    # (app/services/job_lease.py, job_reaper.py); on a re-queued job, when its message was
    # last sent. ``attempts`` counts the runs started and
    # fences a superseded run: only the run holding the current attempt may store results.
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), unique=True
    )
    version: Mapped[int] = mapped_column(Integer)
    artifact_path: Mapped[str] = mapped_column(String(500))
    estimator: Mapped[str] = mapped_column(String(40))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The newest label event the training labels include: which snapshot this model saw.
    label_event_watermark: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Prediction(Base):
    """Per item and model version: prediction and its place in the suspicion ranking."""

    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("model_version_id", "item_id"),
        Index("ix_predictions_rank", "model_version_id", "suspicion_rank"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float)
    # InfFeed: the label the item's proponents vote for where the model is unsure
    suggested_label: Mapped[str | None] = mapped_column(Text)
    suspicion_rank: Mapped[int | None] = mapped_column(Integer)
    # the part of the item the suspicion is about: a sentence's most suspicious span
    # (``start:end`` token offsets), which the queue highlights; None for a whole-item label
    focus: Mapped[str | None] = mapped_column(Text)


class Score(Base):
    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("model_version_id", "item_id", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # loss | self_influence | dev_influence
    value: Mapped[float] = mapped_column(Float)


class Influencer(Base):
    """Top-k evidence only: the training items that most support or oppose a target's label."""

    __tablename__ = "influencers"
    __table_args__ = (
        Index("ix_influencers_target", "model_version_id", "target_item_id"),
        Index("ix_influencers_train", "model_version_id", "train_item_id"),  # items like this
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    target_item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    train_item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(10))  # supporter | opposer | proponent
    rank: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    # The train item's label in the version's training snapshot: what the model learned from,
    # which a later correction does not change. None where it was not recorded (versions
    # stored before migration 0008): the label then is unknown, not the current one.
    train_label: Mapped[str | None] = mapped_column(Text)
    # The label whose loss on the target the value is about: the target's own training label
    # for supporters and opposers, the suggested label for proponents (None: not recorded).
    target_label: Mapped[str | None] = mapped_column(Text)


class Assignment(Base):
    """One annotator's standing with one item: skipped (back of my queue), passed (not for me),
    done (my vote in ``label``), open (undone). The lease itself is on the item."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("item_id", "user_id"),
        UniqueConstraint("user_id", "idempotency_key", name="uq_assignments_user_key"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(20))
    label: Mapped[str | None] = mapped_column(Text)
    # the last skip's key: the same skip sent twice finds it and changes nothing
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
