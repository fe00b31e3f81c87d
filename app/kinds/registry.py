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
from app.kinds.rows import Row
from app.kinds.sequence_tagging import annotation as spans
from app.kinds.sequence_tagging import export as tagging_export
from app.kinds.sequence_tagging import rows as tagging_rows
from app.kinds.sequence_tagging.rows import TOKENS_KEY
from app.kinds.text_classification import formats as classification_formats
from app.services import export


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
        ),
    )
}


def spec_of(project: Any) -> KindSpec:
    """The project's kind (anything with a ``task_kind``)."""
    return KINDS[TaskKind(project.task_kind)]
