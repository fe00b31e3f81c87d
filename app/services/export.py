"""A project's items with their provenance, as CSV or JSONL, streamed in batches.

CSV is meant to be opened in a spreadsheet, which runs a cell starting with ``=``, ``+``, ``-``,
``@``, tab or carriage return as a formula (CSV injection: texts, labels, ids and notes come from
uploads and annotators). Following OWASP's advice, such a text cell gets a leading ``'`` and
every text cell is quoted, so a separator inside it (``;`` in some locales) never starts a new
cell. Numbers stay bare (``-0.5`` is a number, not a formula). JSONL is exact.

The individual annotators' votes (their ``done`` assignments: a vote taken back by an undo is
``open`` again, so it is left out) come with each item: in JSONL a ``votes`` list of
``{annotator, label, at}``, in CSV one ``vote_<username>`` column per annotator who voted in the
project. They are fetched with one query per batch, never one per row.

One SELECT feeds the whole file (a consistent snapshot on PostgreSQL) and is read through a
server-side cursor ``batch`` rows at a time, so memory stays flat however large the project.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, Select, and_, func, select
from sqlalchemy.orm import Session, aliased

from app.core.db import new_session
from app.models import (
    Assignment,
    DatasetKind,
    EventSource,
    Item,
    ItemStatus,
    LabelEvent,
    ModelVersion,
    Prediction,
    Score,
    User,
)
from app.services.decision_counts import stands
from app.services.item_filters import ItemFilter
from app.services.results import latest_model_version


class ExportFormat(StrEnum):
    """Every format some kind exports; each kind lists its own (``KindSpec.exports``)."""

    csv = "csv"
    jsonl = "jsonl"
    conll = "conll"
    svmlight = "svmlight"


MEDIA_TYPES = {
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.jsonl: "application/x-ndjson",
    ExportFormat.conll: "text/plain; charset=utf-8",
    ExportFormat.svmlight: "text/plain; charset=utf-8",
}
Batches = Iterable[list[dict[str, Any]]]


@dataclass(frozen=True)
class Exporter:
    """One format of one kind's export: ``encode(project_id, batches)`` turns the batches of
    ``export_records`` into the file's chunks (it may query the project first, as the CSV's
    vote columns do, but must not read the batches before the download starts)."""

    encode: Callable[[int, Batches], Iterator[bytes]]
    description: str  # what the file holds, for the API's documentation


SCORE_KINDS = ("suspicion", "self_influence", "dev_influence", "loss")
COLUMNS = (
    "id",
    "external_id",
    "dataset",
    "text",
    "silver_label",
    "final_label",
    "reference_label",
    "status",
    "decided_by",
    "decided_at",
    "note",
    "model_version",
    "estimator",
    "predicted_label",
    "confidence",
    "suggested_label",
    "suspicion_rank",
    *(f"score_{kind}" for kind in SCORE_KINDS),
)


def export_query(
    project_id: int,
    version: ModelVersion | None,
    kinds: Sequence[DatasetKind] | None,
    filters: ItemFilter | None = None,
) -> Select:
    """Items in id order (those ``filters`` keep), each with the event that set its final
    label (the latest import or decision that stands: not an undo, nor undone) and the newest
    model's results."""
    latest_event = (
        select(LabelEvent.item_id, func.max(LabelEvent.id).label("event_id"))
        .join(Item, Item.id == LabelEvent.item_id)
        .where(
            Item.project_id == project_id,
            stands() | (LabelEvent.source == EventSource.imported),
        )
        .group_by(LabelEvent.item_id)
        .subquery()
    )
    version_id = version.id if version is not None else -1
    scores = {kind: aliased(Score, name=f"score_{kind}") for kind in SCORE_KINDS}
    query = (
        select(
            Item.id.label("id"),
            Item.external_id.label("external_id"),
            Item.dataset_kind.label("dataset"),
            Item.text.label("text"),
            Item.silver_label.label("silver_label"),
            Item.current_label.label("final_label"),
            Item.reference_label.label("reference_label"),
            Item.status.label("status"),
            Item.payload.label("payload"),
            LabelEvent.source.label("source"),
            User.username.label("username"),
            func.coalesce(User.username, LabelEvent.source).label("decided_by"),
            LabelEvent.created_at.label("decided_at"),
            LabelEvent.reason.label("note"),
            Prediction.id.label("prediction_id"),
            Prediction.label.label("predicted_label"),
            Prediction.confidence.label("confidence"),
            Prediction.suggested_label.label("suggested_label"),
            Prediction.suspicion_rank.label("suspicion_rank"),
            *(alias.value.label(f"score_{kind}") for kind, alias in scores.items()),
        )
        .outerjoin(latest_event, latest_event.c.item_id == Item.id)
        .outerjoin(LabelEvent, LabelEvent.id == latest_event.c.event_id)
        .outerjoin(User, User.id == LabelEvent.user_id)
        .outerjoin(
            Prediction,
            and_(Prediction.item_id == Item.id, Prediction.model_version_id == version_id),
        )
        .where(Item.project_id == project_id)
        .order_by(Item.id)
    )
    for kind, alias in scores.items():
        query = query.outerjoin(
            alias,
            and_(
                alias.item_id == Item.id,
                alias.model_version_id == version_id,
                alias.kind == kind,
            ),
        )
    if kinds:
        query = query.where(Item.dataset_kind.in_([k.value for k in kinds]))
    if filters is not None:
        query = query.where(*filters.conditions())
    return query


# Not in the classification files; other kinds' encoders read them: the item's payload (a
# sentence's tokens), the deciding event's source and the decider's username (None: no decision)
KIND_COLUMNS = ("payload", "source", "username")
VOTES = "votes"
VOTE_PREFIX = "vote_"


def voter_names(session: Session, project_id: int) -> list[str]:
    """Everyone with a standing vote in the project, by name: the CSV's vote columns."""
    return list(
        session.scalars(
            select(User.username)
            .join(Assignment, Assignment.user_id == User.id)
            .join(Item, Item.id == Assignment.item_id)
            .where(Item.project_id == project_id, Assignment.state == "done")
            .distinct()
            .order_by(User.username)
        )
    )


def votes_of(session: Session, item_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The standing votes on these items, oldest first: one query for a whole batch."""
    found: dict[int, list[dict[str, Any]]] = {}
    rows = session.execute(
        select(Assignment.item_id, User.username, Assignment.label, Assignment.updated_at)
        .join(User, User.id == Assignment.user_id)
        .where(Assignment.item_id.in_(item_ids), Assignment.state == "done")
        .order_by(Assignment.item_id, Assignment.updated_at, Assignment.id)
    )
    for item_id, username, label, at in rows:
        vote = {"annotator": username, "label": label, "at": at.isoformat()}
        found.setdefault(item_id, []).append(vote)
    return found


def export_records(
    project_id: int,
    kinds: Sequence[DatasetKind] | None,
    batch: int,
    filters: ItemFilter | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Batches of rows as dicts keyed by ``COLUMNS``, ``KIND_COLUMNS`` and ``votes``; owns its
    session (it outlives the request)."""
    session = new_session()
    try:
        version = latest_model_version(session, project_id)
        result = session.execute(
            export_query(project_id, version, kinds, filters),
            execution_options={"yield_per": batch},
        )
        for rows in result.partitions():
            records = [_record(row, version) for row in rows]
            cast = votes_of(session, [r["id"] for r in records])
            for record in records:
                record[VOTES] = cast.get(record["id"], [])
            yield records
    finally:
        session.close()


def _record(row: Row, version: ModelVersion | None) -> dict[str, Any]:
    values = row._asdict()
    on_model = values.pop("prediction_id") is not None and version is not None
    values["model_version"] = version.version if on_model else None
    values["estimator"] = version.estimator if on_model else None
    if values["status"] != ItemStatus.reviewed:  # a vote awaiting others, or undone: no decision
        for key in ("decided_by", "decided_at", "note", "source", "username"):
            values[key] = None
    elif isinstance(values["decided_at"], datetime):
        values["decided_at"] = values["decided_at"].isoformat()
    return {column: values[column] for column in (*COLUMNS, *KIND_COLUMNS)}


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP: what a spreadsheet would evaluate


def spreadsheet_safe(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'``; others as is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _csv_row(record: dict[str, Any], voters: Sequence[str]) -> list[Any]:
    """The fixed columns, then each voter's label on this item (empty: no vote)."""
    cast = {vote["annotator"]: vote["label"] for vote in record[VOTES]}
    return [*(record[c] for c in COLUMNS), *map(cast.get, voters)]


def encode_table(header: Sequence[str], rows: Iterable[Iterable[list[Any]]]) -> Iterator[bytes]:
    """A CSV header (cells already safe), then one chunk per batch of rows; empty values are
    empty cells, text cells quoted. Every kind's CSV is written by this."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerow(header)
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
    for batch in rows:
        writer.writerows([spreadsheet_safe(value) for value in row] for row in batch)
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def encode_rows(
    header: Sequence[str], batches: Batches, row: Callable[[dict[str, Any]], list[Any]]
) -> Iterator[bytes]:
    """``encode_table`` of one ``row(record)`` per record, batch by batch."""
    return encode_table(header, ([row(r) for r in records] for records in batches))


# Provenance of a record: ``source`` is what set its current annotation (``import`` for an
# upload's, else the deciding event's: annotator, review, bulk, consensus), ``decided_by`` the
# person (None for an import or a consensus), ``changed`` whether the current annotation differs
# from the silver one (False for gold and test records, which have none).
DECISION_COLUMNS = ("status", "source", "decided_by", "decided_at", "changed", "note")
RESULT_COLUMNS = ("suspicion_rank", "estimator")  # the newest model's, empty where it has none


def provenance(record: dict[str, Any]) -> dict[str, Any]:
    """Where the record's current annotation came from (see ``DECISION_COLUMNS``)."""
    silver = record["silver_label"]
    return {
        "source": record["source"] or EventSource.imported.value,
        "decided_by": record["username"],
        "decided_at": record["decided_at"],
        "changed": silver is not None and silver != record["final_label"],
        "note": record["note"],
    }


def provenance_cells(
    record: dict[str, Any], columns: Sequence[str], own: dict[str, Any] | None = None
) -> list[Any]:
    """A provenance CSV's cells for ``columns``: the kind's ``own`` cells where it names the
    column, else the record's ids, ``text``, ``silver`` annotation, ``DECISION_COLUMNS``
    (``changed`` as ``true``/``false``) and ``RESULT_COLUMNS``."""
    found = provenance(record)
    cells = {
        **{key: record[key] for key in ("id", "external_id", "dataset", "text", "status")},
        "silver": record["silver_label"],
        **found,
        "changed": "true" if found["changed"] else "false",
        **{key: record[key] for key in RESULT_COLUMNS},
        **(own or {}),
    }
    return [cells[column] for column in columns]


def encode_csv(batches: Batches, voters: Sequence[str]) -> Iterator[bytes]:
    """The classification CSV: ``COLUMNS``, then a vote column per voter. Usernames in the
    header are neutralised like any text cell."""
    header = [*COLUMNS, *(spreadsheet_safe(VOTE_PREFIX + name) for name in voters)]
    return encode_table(header, ((_csv_row(r, voters) for r in records) for records in batches))


def encode_jsonl(batches: Batches) -> Iterator[bytes]:
    """The classification JSONL: one object per line (``COLUMNS`` and ``votes``); empty values
    are null."""
    for records in batches:
        yield "".join(json_line({c: r[c] for c in (*COLUMNS, VOTES)}) for r in records).encode()


def json_line(value: Any) -> str:
    """One JSONL line, UTF-8 text unescaped."""
    return json.dumps(value, ensure_ascii=False) + "\n"


def classification_csv(project_id: int, batches: Batches) -> Iterator[bytes]:
    with new_session() as session:  # the header needs the vote columns before the first row
        voters = voter_names(session, project_id)
    return encode_csv(batches, voters)


CLASSIFICATION_EXPORTS = {
    ExportFormat.csv: Exporter(
        classification_csv,
        "one row per item with columns " + ", ".join(COLUMNS) + " and vote_<annotator>",
    ),
    ExportFormat.jsonl: Exporter(
        lambda project_id, batches: encode_jsonl(batches),
        "one object per item with the CSV's columns and a votes list",
    ),
}


def stream_export(
    project_id: int,
    exporter: Exporter,
    kinds: Sequence[DatasetKind] | None,
    batch: int,
    filters: ItemFilter | None = None,
) -> Iterator[bytes]:
    """The file's chunks; ``exporter`` is the project's kind's (``KindSpec.exports``)."""
    return exporter.encode(project_id, export_records(project_id, kinds, batch, filters))
