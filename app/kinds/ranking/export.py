"""A ranking project's export: svmlight (one ``grade qid:Q i:v ... # doc`` line per judgment,
the grade its current one) and a provenance CSV in the same order.

The svmlight lines are rebuilt from the stored features: each value in its shortest exact
form (``0.75000`` comes back as ``0.75``; whole numbers without a point), the document-id
comment where the upload had one. Features a CSV upload named are numbered by their column
order. Gold and test judgments carry their gold grade; ``silver`` is empty for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app.kinds.ranking.formats import DOC_KEY, FEATURES_KEY, QID_KEY
from app.kinds.sequence_tagging.export import provenance
from app.services.export import Batches, Exporter, ExportFormat, encode_table

PROVENANCE_COLUMNS = (
    "id",
    "external_id",
    "dataset",
    "query",
    "doc",
    "text",
    "silver",
    "grade",
    "status",
    "source",
    "decided_by",
    "decided_at",
    "changed",
    "note",
    "suspicion_rank",
    "estimator",
)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def svmlight_line(record: dict[str, Any]) -> str:
    """One judgment's line with its current grade."""
    payload = record["payload"]
    features = payload.get(FEATURES_KEY, {})
    pairs = [
        (name if name.isdigit() else str(k), value)
        for k, (name, value) in enumerate(features.items(), start=1)
    ]
    cells = " ".join(f"{index}:{_number(value)}" for index, value in pairs)
    line = f"{record['final_label']} qid:{payload[QID_KEY]}" + (f" {cells}" if cells else "")
    doc = payload.get(DOC_KEY)
    return line + (f" # {doc}" if doc else "") + "\n"


def encode_svmlight(batches: Batches) -> Iterator[bytes]:
    for records in batches:
        yield "".join(svmlight_line(r) for r in records).encode()


def _provenance_row(record: dict[str, Any]) -> list[Any]:
    found = provenance(record)
    payload = record["payload"]
    row = {
        **{key: record[key] for key in ("id", "external_id", "dataset", "text", "status")},
        "query": payload[QID_KEY],
        "doc": payload.get(DOC_KEY),
        "silver": record["silver_label"],
        "grade": record["final_label"],
        **found,
        "changed": "true" if found["changed"] else "false",
        "suspicion_rank": record["suspicion_rank"],
        "estimator": record["estimator"],
    }
    return [row[column] for column in PROVENANCE_COLUMNS]


def encode_provenance_csv(batches: Batches) -> Iterator[bytes]:
    rows = ([_provenance_row(r) for r in records] for records in batches)
    return encode_table(PROVENANCE_COLUMNS, rows)


EXPORTS = {
    ExportFormat.svmlight: Exporter(
        lambda project_id, batches: encode_svmlight(batches),
        "svmlight/LETOR: `grade qid:Q i:v ... # doc` per judgment with its current grade; "
        "no provenance",
    ),
    ExportFormat.csv: Exporter(
        lambda project_id, batches: encode_provenance_csv(batches),
        "provenance, one row per judgment in the svmlight's order: "
        + ", ".join(PROVENANCE_COLUMNS),
    ),
}
