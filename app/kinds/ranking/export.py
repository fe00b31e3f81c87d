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
from app.services.export import (
    DECISION_COLUMNS,
    RESULT_COLUMNS,
    Batches,
    Exporter,
    ExportFormat,
    encode_rows,
    provenance_cells,
)

PROVENANCE_COLUMNS = (
    "id",
    "external_id",
    "dataset",
    "query",
    "doc",
    "text",
    "silver",
    "grade",
    *DECISION_COLUMNS,
    *RESULT_COLUMNS,
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
    payload = record["payload"]
    own = {"query": payload[QID_KEY], "doc": payload.get(DOC_KEY), "grade": record["final_label"]}
    return provenance_cells(record, PROVENANCE_COLUMNS, own)


def encode_provenance_csv(batches: Batches) -> Iterator[bytes]:
    return encode_rows(PROVENANCE_COLUMNS, batches, _provenance_row)


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
