"""A sequence-tagging project's export: CoNLL, JSONL and a provenance CSV, one sentence each.

CoNLL holds tokens and tags only (IOB2, a blank line after each sentence), so the file goes
back into ``read_conll``, or any CoNLL reader, and gives the current spans: a comment line would
be read as a token (``formats``), so the provenance cannot ride along in it. It comes instead,
in the same order, in the CSV (one row per sentence: ids, annotation strings, who decided and
how) and in the JSONL, which carries both: ``to_record``'s ``id`` (the item's id, unique in the
project, where upload ids repeat across datasets), ``tokens``, ``tags`` and ``spans``, and the
provenance keys (``app.services.export.provenance``), which ``read_jsonl`` ignores.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app.kinds.sequence_tagging.annotation import decode
from app.kinds.sequence_tagging.formats import Sentence, conll_block, to_record
from app.kinds.sequence_tagging.rows import TOKENS_KEY
from app.services.export import (
    DECISION_COLUMNS,
    VOTES,
    Batches,
    Exporter,
    ExportFormat,
    encode_rows,
    json_line,
    provenance,
    provenance_cells,
)

PROVENANCE_COLUMNS = ("id", "external_id", "dataset", "text", "silver", "final", *DECISION_COLUMNS)


def _sentence(record: dict[str, Any]) -> Sentence:
    """The item as a sentence with its current spans; its id is the item's."""
    spans = decode(record["final_label"])
    return Sentence(record["payload"][TOKENS_KEY], spans, line=0, external_id=str(record["id"]))


def _spans_json(value: str | None) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    return [{"start": s.start, "end": s.end, "label": s.label} for s in decode(value)]


def jsonl_record(record: dict[str, Any]) -> dict[str, Any]:
    """``to_record`` of the current spans, then the item's ids, dataset, status, silver spans,
    provenance and standing votes (each as spans)."""
    out = to_record(_sentence(record))
    out["id"] = record["id"]  # a number, as in the classification JSONL
    out.update(
        external_id=record["external_id"],
        dataset=record["dataset"],
        status=record["status"],
        silver=_spans_json(record["silver_label"]),
        **provenance(record),
        votes=[
            {"annotator": v["annotator"], "spans": _spans_json(v["label"]), "at": v["at"]}
            for v in record[VOTES]
        ],
    )
    return out


def encode_conll(batches: Batches) -> Iterator[bytes]:
    for records in batches:
        yield "".join(conll_block(_sentence(r)) for r in records).encode()


def encode_jsonl(batches: Batches) -> Iterator[bytes]:
    for records in batches:
        yield "".join(json_line(jsonl_record(r)) for r in records).encode()


def _provenance_row(record: dict[str, Any]) -> list[Any]:
    return provenance_cells(record, PROVENANCE_COLUMNS, {"final": record["final_label"]})


def encode_provenance_csv(batches: Batches) -> Iterator[bytes]:
    return encode_rows(PROVENANCE_COLUMNS, batches, _provenance_row)


EXPORTS = {
    ExportFormat.conll: Exporter(
        lambda project_id, batches: encode_conll(batches),
        "CoNLL: `token TAG` lines (IOB2), a blank line after each sentence; no provenance",
    ),
    ExportFormat.jsonl: Exporter(
        lambda project_id, batches: encode_jsonl(batches),
        "one object per sentence: id, tokens, tags, spans, external_id, dataset, status, "
        "silver, source, decided_by, decided_at, changed, note, votes",
    ),
    ExportFormat.csv: Exporter(
        lambda project_id, batches: encode_provenance_csv(batches),
        "provenance, one row per sentence in the CoNLL's order: "
        + ", ".join(PROVENANCE_COLUMNS)
        + " (silver and final as start:end:TYPE strings)",
    ),
}
