"""Parse an uploaded dataset (CSV or JSONL) into validated rows, or say exactly what is wrong.

Validation happens before anything is written, so a bad file stores nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

TEXT_FIELD = "text"
LABEL_FIELD = "label"
OPTIONAL_FIELDS = ("id", "split", "reference_label")
SPLITS = ("train", "dev", "test")


class IngestError(ValueError):
    """A problem in an uploaded file, located by file, line and field."""

    def __init__(self, filename: str, line: int | None, field: str | None, message: str):
        self.filename, self.line, self.field, self.message = filename, line, field, message
        where = (
            filename + (f", line {line}" if line else "") + (f", field '{field}'" if field else "")
        )
        super().__init__(f"{where}: {message}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.filename,
            "line": self.line,
            "field": self.field,
            "message": self.message,
        }


@dataclass
class Row:
    line: int
    external_id: str
    text: str
    label: str | None
    split: str | None = None
    reference_label: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def decode(data: bytes, filename: str) -> str:
    """Strict UTF-8 (a BOM is allowed); a bad byte is reported with its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise IngestError(
            filename, line, None, f"not valid UTF-8 (byte 0x{data[err.start]:02x}); save as UTF-8"
        ) from None


def _records_csv(text: str, filename: str) -> Iterable[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = reader.fieldnames or []
        _check_header(header, filename)
        for record in reader:
            if None in record:
                raise IngestError(
                    filename, reader.line_num, None, "more values than header columns"
                )
            if any(value is None for value in record.values()):
                raise IngestError(
                    filename, reader.line_num, None, "fewer values than header columns"
                )
            yield reader.line_num, record
    except csv.Error as err:
        raise IngestError(filename, reader.line_num, None, f"malformed CSV: {err}") from None


def _records_jsonl(text: str, filename: str) -> Iterable[tuple[int, dict[str, Any]]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as err:
            raise IngestError(filename, number, None, f"invalid JSON: {err.msg}") from None
        if not isinstance(record, dict):
            raise IngestError(filename, number, None, "each line must be a JSON object")
        _check_header(list(record), filename, number)
        yield number, record


def _check_header(columns: Sequence[str], filename: str, line: int = 1) -> None:
    missing = [name for name in (TEXT_FIELD, LABEL_FIELD) if name not in columns]
    if missing:
        raise IngestError(
            filename,
            line,
            missing[0],
            f"missing column '{missing[0]}' (found: {', '.join(columns) or 'none'}; "
            f"required: text, label; optional: {', '.join(OPTIONAL_FIELDS)})",
        )


def _as_text(value: Any, filename: str, line: int, name: str) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise IngestError(filename, line, name, f"expected a string, got {type(value).__name__}")


def parse_dataset(
    data: bytes,
    filename: str,
    *,
    labels: Sequence[str] | None,
    require_label: bool = True,
    max_rows: int | None = None,
) -> list[Row]:
    """Rows of a CSV or JSONL file (chosen by extension, .jsonl/.json or else CSV).

    ``labels`` is the project's label set: any other label is an error. Ids default to the
    line number and must be unique within the file.
    """
    text = decode(data, filename)
    if not text.strip():
        raise IngestError(filename, None, None, "the file is empty")
    is_jsonl = filename.lower().endswith((".jsonl", ".json", ".ndjson"))
    records = _records_jsonl(text, filename) if is_jsonl else _records_csv(text, filename)
    allowed = set(labels) if labels is not None else None
    rows: list[Row] = []
    seen_ids: dict[str, int] = {}
    for line, record in records:
        if max_rows is not None and len(rows) >= max_rows:
            raise IngestError(filename, line, None, f"more than {max_rows} rows (the upload limit)")
        body = _as_text(record.get(TEXT_FIELD), filename, line, TEXT_FIELD)
        if not body:
            raise IngestError(filename, line, TEXT_FIELD, "empty text")
        label = _optional(record, LABEL_FIELD, filename, line)
        if label is None and require_label:
            raise IngestError(filename, line, LABEL_FIELD, "empty label")
        reference = _optional(record, "reference_label", filename, line)
        for name, value in ((LABEL_FIELD, label), ("reference_label", reference)):
            if value is not None and allowed is not None and value not in allowed:
                raise IngestError(
                    filename,
                    line,
                    name,
                    f"unknown label '{value}' (project labels: {', '.join(sorted(allowed))})",
                )
        split = _optional(record, "split", filename, line)
        if split is not None and split not in SPLITS:
            raise IngestError(filename, line, "split", f"split must be one of {', '.join(SPLITS)}")
        external_id = _optional(record, "id", filename, line) or str(len(rows) + 1)
        if external_id in seen_ids:
            raise IngestError(
                filename,
                line,
                "id",
                f"duplicate id '{external_id}' (first on line {seen_ids[external_id]})",
            )
        seen_ids[external_id] = line
        extra = {
            k: v for k, v in record.items() if k not in (TEXT_FIELD, LABEL_FIELD, *OPTIONAL_FIELDS)
        }
        rows.append(Row(line, external_id, body, label, split, reference, extra))
    if not rows:
        raise IngestError(filename, None, None, "the file has a header but no rows")
    return rows


def _optional(record: dict[str, Any], name: str, filename: str, line: int) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    value = _as_text(value, filename, line, name)
    return value or None
