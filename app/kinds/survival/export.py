"""A survival project's export: the records as uploaded, with their current duration and event
written back into the mapped columns, and the provenance of each.

Columns: ``id`` (the item's, unique in the project), ``external_id`` (the upload's id or row
number), ``dataset``, every covariate column in the order of the first upload that has it, the
duration and event columns (the project's labels) holding the current annotation, ``silver``
(the uploaded annotation string, empty for gold and test records), ``status``, then who decided
and how (``source``, ``decided_by``, ``decided_at``, ``changed``, ``note``: see
``app.services.export.provenance``) and the newest model's ``suspicion_rank`` and
``estimator``. A record without an annotation leaves both mapped cells empty.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import func, select

from app.core.db import new_session
from app.kinds.survival.annotation import decode
from app.kinds.survival.formats import FIELDS_KEY
from app.models import Item, Project
from app.services.export import (
    DECISION_COLUMNS,
    RESULT_COLUMNS,
    Batches,
    Exporter,
    ExportFormat,
    encode_rows,
    provenance_cells,
    spreadsheet_safe,
)

LEADING = ("id", "external_id", "dataset")
TRAILING = ("silver", *DECISION_COLUMNS, *RESULT_COLUMNS)


def covariate_columns(project_id: int) -> tuple[list[str], list[str]]:
    """(covariate columns, [duration column, event column]) of a project: the covariates of
    each dataset's first record, in upload order, without repeats."""
    with new_session() as session:
        project = session.get(Project, project_id)
        first = (
            select(func.min(Item.id))
            .where(Item.project_id == project_id)
            .group_by(Item.dataset_id)
            .scalar_subquery()
        )
        payloads = session.scalars(
            select(Item.payload).where(Item.id.in_(first)).order_by(Item.id)
        ).all()
        labels = list(project.labels)
    columns: dict[str, None] = {}
    for payload in payloads:
        columns.update((name, None) for name, _ in payload.get(FIELDS_KEY, ()))
    return list(columns), labels


def number(value: float) -> int | float:
    """A duration as a bare CSV number: whole ones without ``.0``."""
    return int(value) if value.is_integer() else value


def record_row(record: dict[str, Any], covariates: Sequence[str]) -> list[Any]:
    """One record's cells in ``header`` order."""
    fields = dict(record["payload"].get(FIELDS_KEY, ()))
    final = record["final_label"]
    duration, event = decode(final) if final else (None, None)
    return [
        *provenance_cells(record, LEADING),
        *(fields.get(name) for name in covariates),
        None if duration is None else number(duration),
        event,
        *provenance_cells(record, TRAILING),
    ]


def encode_csv(project_id: int, batches: Batches) -> Iterator[bytes]:
    covariates, mapped = covariate_columns(project_id)
    header = [spreadsheet_safe(name) for name in (*LEADING, *covariates, *mapped, *TRAILING)]
    return encode_rows(header, batches, lambda record: record_row(record, covariates))


EXPORTS = {
    ExportFormat.csv: Exporter(
        encode_csv,
        "one row per record: "
        + ", ".join(LEADING)
        + ", the covariate columns as uploaded, the duration and event columns with the "
        "current annotation, " + ", ".join(TRAILING),
    ),
}
