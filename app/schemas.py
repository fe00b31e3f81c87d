"""API request and response models (the OpenAPI document is generated from these)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    computed_field,
    field_validator,
)

from app.core.config import get_settings
from app.kinds import TaskKind
from app.kinds.estimators import ESTIMATORS, Estimator
from app.kinds.registry import KINDS
from app.models import DatasetKind, EventSource, ItemStatus, JobKind, JobState
from app.services.datasets import ImportMode
from app.services.preselect import Preselect, preselect_in
from app.services.projects import BadProject, checked_labels, checked_name
from app.services.queue import OVERLAP_MAX


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters (\\u0000)")
    return value


def plain_str(min_length: int | None = None, max_length: int | None = None) -> Any:
    """Text that may reach the database: PostgreSQL refuses NUL in text, so it is a 422 here
    (and the pattern tells API clients, and the schema fuzz test, up front). The lengths are
    checked on the string before the NUL check: given after it (``Field(max_length=...)`` on
    the field), pydantic would call the characters "items"."""
    return Annotated[
        str,
        StringConstraints(min_length=min_length, max_length=max_length),
        AfterValidator(_no_nul),
        Field(json_schema_extra={"pattern": "^[^\\x00]*$"}),
    ]


PlainStr = plain_str()
LABEL_MAX_LENGTH = 200  # the label columns of items, predictions and label events
PROJECT_NAME_MAX_LENGTH = 200  # projects.name
Label = plain_str(max_length=LABEL_MAX_LENGTH)
# an annotation of any kind: a class label, or a sentence's spans (``start:end:TYPE`` each)
ANNOTATION_MAX_LENGTH = 20_000
Annotation = plain_str(max_length=ANNOTATION_MAX_LENGTH)
ProjectName = plain_str(min_length=1, max_length=PROJECT_NAME_MAX_LENGTH)
TokenName = plain_str(max_length=120)
IdempotencyKey = Annotated[
    plain_str(min_length=8, max_length=100), Field(description="a fresh random string per action")
]


def _known_estimator(name: object) -> object:
    """Before the enum's own check: the refusal lists the known names in words."""
    if isinstance(name, str) and name not in ESTIMATORS:
        raise ValueError(f"unknown estimator '{name}' (known: {', '.join(ESTIMATORS)})")
    return name


class EvidenceRole(StrEnum):
    supporter = "supporter"
    opposer = "opposer"
    proponent = "proponent"


def _project_rule(rule: Callable[[Any], Any], value: Any) -> Any:
    """The service's rule for names and labels, its message without the field prefix (the
    422's ``loc`` names the field)."""
    try:
        return rule(value)
    except BadProject as err:
        raise ValueError(str(err).split(": ", 1)[-1]) from None


class ProjectCreate(BaseModel):
    name: ProjectName
    # before labels: their check reads it (how many a kind needs)
    task_kind: TaskKind = Field(
        default=TaskKind.text_classification, description="what kind of data the project holds"
    )
    labels: list[Label] = Field(
        min_length=1,
        description="the label set (a sequence-tagging project's entity types; a text "
        "classification project needs two or more); uploads may use no other",
    )
    estimator: Estimator | None = Field(
        default=None, description="ranking; default: the best measured"
    )

    _estimator = field_validator("estimator", mode="before")(_known_estimator)

    @field_validator("name")
    @classmethod
    def named(cls, name: str) -> str:
        return _project_rule(checked_name, name)

    @field_validator("labels", mode="before")
    @classmethod
    def not_too_many(cls, labels: object) -> object:
        """Before each label is validated: a million-label body fails at once, with one issue."""
        limit = get_settings().max_labels
        if isinstance(labels, list) and len(labels) > limit:
            raise ValueError(f"at most {limit} labels (ASSAY_MAX_LABELS), got {len(labels)}")
        return labels

    @field_validator("labels")
    @classmethod
    def distinct_labels(cls, labels: list[str], info: ValidationInfo) -> list[str]:
        kind = info.data.get("task_kind", TaskKind.text_classification)
        spec = KINDS[kind]
        return _project_rule(
            lambda value: checked_labels(value, spec.min_labels, spec.max_labels), labels
        )


class ProjectUpdate(BaseModel):
    estimator: Estimator | None = None
    overlap: int | None = Field(
        default=None, ge=1, le=OVERLAP_MAX, description="distinct annotators who label each item"
    )
    retrain_every: int | None = Field(
        default=None,
        ge=1,
        description="retrain after this many corrections since the last model version; "
        "null: by hand only (leave the field out to keep the current policy)",
    )
    preselect: Preselect | None = Field(
        default=None,
        description="what the queue pre-selects: nothing (default: Enter waits for a label), "
        "the model's suggestion, or the silver label (Enter then confirms it unread)",
    )
    guidelines: PlainStr | None = Field(
        default=None,
        description="annotation guidelines in Markdown (shown on the queue, raw HTML not "
        "rendered), at most ASSAY_MAX_GUIDELINES_CHARS characters; empty: none",
    )

    _estimator = field_validator("estimator", mode="before")(_known_estimator)


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    task_kind: TaskKind
    labels: list[str]
    settings: dict
    created_at: datetime

    @computed_field(description="what the queue pre-selects for each item")
    @property
    def preselect(self) -> Preselect:
        return preselect_in(self.settings)

    @computed_field(description="annotation guidelines, Markdown ('' when none)")
    @property
    def guidelines(self) -> str:
        return str(self.settings.get("guidelines") or "")


class ModelVersionOut(BaseModel):
    """A model version beside the one before it (the ``None`` fields: the first version)."""

    version: int
    created_at: datetime
    estimator: Estimator
    n_train: int | None
    dev_macro_f1: float | None = Field(description="on the gold dev set, when there is one")
    test_macro_f1: float | None = Field(description="on the test set, when it has labels")
    silver_left_out: int | None = Field(
        description="unreviewed silver items a second model left out (share chosen on dev)"
    )
    dev_macro_f1_left_out: float | None = Field(description="that model on the gold dev set")
    test_macro_f1_left_out: float | None = Field(description="that model on the test set")
    corrections: int | None = Field(description="labels corrected since the previous version")
    queue_moved: int | None = Field(description="pending items whose queue position changed")
    queue_compared: int | None = Field(description="pending items ranked by both versions")
    new_in_top: int | None = Field(description="items in the queue's top that were not before")
    top: int | None


class DatasetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: DatasetKind
    source_filename: str
    row_count: int


class DatasetUpload(BaseModel):
    """A dataset file and what it is (multipart/form-data)."""

    # for the OpenAPI document only: the route streams the body itself (app.api.uploads)
    file: bytes = Field(description="CSV or JSONL: text, label[, id, split, reference_label]")
    kind: DatasetKind = DatasetKind.silver
    mode: ImportMode = Field(
        default=ImportMode.refuse,
        description="ids already in the project: refuse the file (422), replace those items, "
        "or skip them",
    )


class UploadError(BaseModel):
    file: str
    line: int | None
    field: str | None
    message: str


class JobCreate(BaseModel):
    kind: str = Field(default="train_score", pattern="^train_score$")


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    project_id: int
    kind: JobKind
    state: JobState
    stage: str = Field(description="what the job is doing now, in words (free text)")
    progress: float = Field(ge=0.0, le=1.0)
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int = Field(
        default=0, description="runs started; above 1, a worker was lost and the job re-queued"
    )
    heartbeat_at: datetime | None = Field(
        default=None, description="the running worker's last sign of life"
    )


class ItemScores(BaseModel):
    """The newest model version's scores of a training item (null: not computed for it, as
    for held-out items, or ``dev_influence`` without gold targets)."""

    suspicion: float | None = Field(
        default=None, description="the project's ranking: higher is more likely a wrong label"
    )
    loss: float | None = Field(default=None, description="the model's loss on the item's label")
    self_influence: float | None = Field(
        default=None, description="how much the item's own loss rises if it is left out"
    )
    dev_influence: float | None = Field(
        default=None,
        description="influence on the gold targets' loss: negative means removing the item "
        "would lower it (a harmful label)",
    )
    suspicion_margin: float | None = Field(
        default=None, description="the margin baseline's ranking score, for comparison"
    )
    suspicion_cleanlab: float | None = Field(
        default=None, description="cleanlab's ranking score, for comparison"
    )


class ItemOut(BaseModel):
    id: int
    external_id: str
    dataset_kind: DatasetKind
    text: str
    silver_label: str | None
    gold_label: str | None
    current_label: str | None
    status: ItemStatus
    predicted_label: str | None = None
    suggested_label: str | None = Field(
        default=None, description="InfFeed: the vote of the item's proponents where unsure"
    )
    confidence: float | None = None
    suspicion_rank: int | None = None
    scores: ItemScores = Field(default_factory=ItemScores)
    model_version: int | None = None
    estimator: Estimator | None = Field(
        default=None, description="which estimator produced the scores"
    )


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None


class EvidenceOut(BaseModel):
    """A training item in an item's evidence (``app/services/results.py`` ``Evidence``)."""

    item_id: int
    text: str
    label: str | None = Field(description="the training item's label now (= current_label)")
    role: EvidenceRole = Field(
        description="supporter (removing it would raise the loss of the item's own training "
        "label), opposer (would lower it), proponent (a supporter of the suggested label)"
    )
    rank: int
    value: float = Field(
        description="influence: loss of target_label on this item without the training item, "
        "minus with it"
    )
    train_label: str | None = Field(
        description="its label when the model was trained (null: not recorded, older versions)"
    )
    current_label: str | None = Field(description="its label now")
    label_source: Literal["silver", "gold", "reviewed"] = Field(
        description="where the trained-on label came from"
    )
    changed_by: str | None = Field(
        description="who changed the label since the training (null: unchanged)"
    )
    changed_at: datetime | None = Field(description="when the label was changed since")
    target_label: str | None = Field(description="the label whose loss value is about")
    effect: str = Field(description="value in words")


class LabelEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    source: EventSource = Field(
        description="import, an annotator's vote, the consensus of votes, a review, an undo, "
        "or one item's share of a bulk change (bulk) and its undo (bulk_undo)"
    )
    user_id: int | None
    old_label: str | None
    new_label: str | None
    reason: str | None = Field(description="the note, or what the event did (e.g. an undo's)")
    group_id: int | None = Field(description="the bulk change this event belongs to")
    created_at: datetime


class ItemDetail(ItemOut):
    evidence: list[EvidenceOut]
    history: list[LabelEventOut]


class LabelDecision(BaseModel):
    label: Annotation = Field(
        description="a label of the project's set, or a sentence's entities as "
        "`start:end:TYPE` token spans separated by spaces (`O`: none), or a survival "
        "record's follow-up as `<duration> <event>` (a positive duration; event 1, or 0 "
        "for censored: `1814 1`)"
    )
    idempotency_key: IdempotencyKey


class TokenRequest(BaseModel):
    username: PlainStr
    password: str
    name: TokenName = "api"


class TokenOut(BaseModel):
    token: str


class PasswordChange(BaseModel):
    """The caller's own password: the current one, then the new one (the password policy)."""

    current_password: str
    new_password: str
