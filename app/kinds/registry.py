"""Each task kind in one entry: how its files are read, what an annotation is, how a page
shows and edits one. The web process reads this (no torch); ``workers.kinds`` holds the other
half, how each kind is trained and scored.

Why annotations are strings for every kind: items, votes, label events, bulk groups and
predictions then store, compare, undo and export any kind's annotation with one code path; a
kind only says which strings are valid (``check``, which also makes them canonical, so equal
annotations are equal strings) and how to show one (``describe``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

from app.core.config import get_settings
from app.core.text import excerpt
from app.kinds import TaskKind
from app.kinds.ranking import context as ranking_context
from app.kinds.ranking import export as ranking_export
from app.kinds.ranking import formats as ranking_formats
from app.kinds.rows import Row
from app.kinds.sequence_tagging import annotation as spans
from app.kinds.sequence_tagging import export as tagging_export
from app.kinds.sequence_tagging import rows as tagging_rows
from app.kinds.sequence_tagging.rows import TOKENS_KEY
from app.kinds.survival import annotation as follow_up
from app.kinds.survival import export as survival_export
from app.kinds.survival import formats as survival_formats
from app.kinds.text_classification import formats as classification_formats
from app.services import export
from app.services.items import ItemView


class RowReader(Protocol):
    def __call__(
        self,
        binary: IO[bytes],
        filename: str,
        *,
        labels: Sequence[str] | None,
        require_label: bool = True,
        max_rows: int | None = None,
    ) -> Iterator[Row]: ...


class BadAnnotation(ValueError):
    """An annotation its kind does not accept; the message says why."""


@dataclass(frozen=True)
class KindSpec:
    kind: TaskKind
    title: str
    label_noun: str  # what the project's labels are called on its pages
    upload_hint: str  # the formats an upload may have
    read_rows: RowReader
    # (project labels, item payload, annotation) -> the canonical annotation, or BadAnnotation
    check: Callable[[Sequence[str], dict[str, Any], str], str]
    # (annotation or None, item payload) -> a readable form for lists and histories
    describe: Callable[[str | None, dict[str, Any]], str]
    # (annotation now or None, the annotation or part of one a model learned from) -> whether
    # the annotation still holds it: evidence shows a training label changed since when not
    holds: Callable[[str | None, str], bool]
    pick_noun: str  # what an annotator picks in the queue ("label", "annotation")
    min_labels: int
    default_estimator: str | None  # None: ASSAY_DEFAULT_ESTIMATOR
    # the download formats (the first is the default) and how each writes the export's rows
    exports: Mapping[export.ExportFormat, export.Exporter]
    # what the new-project form asks for as this kind's labels
    labels_hint: str = "labels, comma-separated"
    max_labels: int | None = None  # None: up to ASSAY_MAX_LABELS
    # whether the project's labels are whole annotations that pages may offer as choices (item
    # filters, bulk relabel, review overrides); False: annotations are made in the kind's editor
    label_choices: bool = True
    # (session, item view) -> what the kind's partials show beside the item (``kind_context``
    # in the queue and item pages: a ranking judgment's query); None: nothing
    context: Callable[[Any, ItemView], dict[str, Any]] | None = None

    def template(self, part: str) -> str:
        """The kind's page partial (templates/kinds/<kind>/<part>.html); every kind has each of
        ``TEMPLATE_PARTS`` (a test checks), so shared pages never ask which kind they show."""
        return f"kinds/{self.kind.value}/{part}.html"


# annotate: the queue's editor; relabel: the item page's; reference: the queue's view of an
# item and its silver label, prediction and suggestion; text and facts: the item page's view of
# it and its annotations; keys: the queue legend's keys; evidence_row: one evidence entry
TEMPLATE_PARTS = ("annotate", "relabel", "reference", "text", "facts", "keys", "evidence_row")


def _check_class(labels: Sequence[str], payload: dict[str, Any], value: str) -> str:
    """One of the project's labels; the message quotes both only in excerpts (a project may
    have ASSAY_MAX_LABELS long labels, a page form may send any length)."""
    if value not in labels:
        limit = get_settings().error_excerpt_chars
        known = excerpt(", ".join(labels), limit)
        raise BadAnnotation(f"unknown label '{excerpt(value, limit)}' (project labels: {known})")
    return value


def _check_spans(labels: Sequence[str], payload: dict[str, Any], value: str) -> str:
    try:
        return spans.checked(value, labels, len(payload.get(TOKENS_KEY, ())))
    except spans.BadAnnotation as err:
        raise BadAnnotation(str(err)) from None


def _check_follow_up(labels: Sequence[str], payload: dict[str, Any], value: str) -> str:
    try:
        return follow_up.checked(value)
    except follow_up.BadAnnotation as err:
        raise BadAnnotation(str(err)) from None


def _check_grade(labels: Sequence[str], payload: dict[str, Any], value: str) -> str:
    """A grade on the project's scale, canonical ("2", not "2.0")."""
    return _check_class(labels, payload, ranking_formats.canonical_grade(value) or value)


KINDS: dict[TaskKind, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec(
            kind=TaskKind.text_classification,
            title="Text classification",
            label_noun="labels",
            upload_hint="CSV or JSONL with text, label[, id, split]",
            read_rows=classification_formats.iter_rows,
            check=_check_class,
            describe=lambda value, payload: value or "",
            holds=lambda now, learned: now == learned,
            pick_noun="label",
            min_labels=2,
            default_estimator=None,
            exports=export.CLASSIFICATION_EXPORTS,
        ),
        KindSpec(
            kind=TaskKind.sequence_tagging,
            title="Named entities (sequence tagging)",
            label_noun="entity types",
            upload_hint="CoNLL (token TAG; IOB1, IOB2 or BIOES) or JSONL (tokens + tags, or "
            "text + character spans)",
            read_rows=tagging_rows.iter_rows,
            check=_check_spans,
            describe=lambda value, payload: spans.describe(value, payload.get(TOKENS_KEY, ())),
            # a segment the model learned from still holds while the sentence keeps that span
            holds=lambda now, learned: learned in (now or "").split(" "),
            pick_noun="annotation",
            min_labels=1,
            # the job uses self-influence by itself when the project has no dev sentences
            default_estimator="segment_dev",
            exports=tagging_export.EXPORTS,
            labels_hint="entity types, comma-separated",
        ),
        KindSpec(
            kind=TaskKind.survival,
            title="Survival (follow-up records)",
            label_noun="duration and event columns",
            upload_hint="CSV with a header: the duration and event columns, covariate "
            "columns[, id, split]",
            read_rows=survival_formats.iter_rows,
            check=_check_follow_up,
            describe=lambda value, payload: follow_up.describe(value),
            holds=lambda now, learned: now == learned,
            pick_noun="duration and event",
            min_labels=2,
            # the job uses self-influence by itself when the project has no gold dev records
            default_estimator="cox_dev",
            exports=survival_export.EXPORTS,
            labels_hint="the duration column, then the event column (e.g. time, cens)",
            max_labels=2,
            label_choices=False,
        ),
        KindSpec(
            kind=TaskKind.ranking,
            title="Learning to rank (relevance judgments)",
            label_noun="grades",
            upload_hint="svmlight/LETOR (grade qid:Q i:v ... # doc; any name but .csv) or CSV "
            "with query, doc, grade[, text, split] and numeric feature columns",
            read_rows=ranking_formats.iter_rows,
            check=_check_grade,
            describe=ranking_formats.describe_grade,
            holds=lambda now, learned: now == learned,
            pick_noun="grade",
            min_labels=2,
            # the engine's measured default, with or without gold dev queries
            default_estimator="grade_gap|pointwise_residual",
            exports=ranking_export.EXPORTS,
            labels_hint="the grade scale, low to high (e.g. 0, 1, 2, 3, 4)",
            context=ranking_context.query_context,
        ),
    )
}


def kind_context(session: Any, project: Any, view: ItemView) -> dict[str, Any]:
    """The project's kind's extra page data about an item (``KindSpec.context``); {} for kinds
    without one."""
    context = spec_of(project).context
    return context(session, view) if context is not None else {}


def spec_of(project: Any) -> KindSpec:
    """The project's kind (anything with a ``task_kind``)."""
    return KINDS[TaskKind(project.task_kind)]
