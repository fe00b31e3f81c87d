"""Text classification's files: parse a dataset (CSV or JSONL) row by row into validated rows,
or say exactly what is wrong.

Rows come one at a time from a file on disk (or bytes), so a million-row upload never sits in
memory whole; the caller stores them in one transaction, so a bad row stores nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TextIO

from app.core import strict_json
from app.core.config import get_settings
from app.core.text import excerpt
from app.kinds.errors import FormatError
from app.kinds.rows import JSONL_SUFFIXES, Records, Row, record_rows

TEXT_FIELD = "text"
LABEL_FIELD = "label"
OPTIONAL_FIELDS = ("id", "split", "reference_label")
SPLITS = ("train", "dev", "test")
ID_MAX_LENGTH = 200  # items.external_id


def records_csv(
    lines: Iterable[str],
    filename: str,
    max_columns: int,
    check_header: Callable[[Sequence[str], str], None] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, record) per CSV row; ``check_header`` (default: text and label required) may
    refuse the header, and a row with more or fewer values than the header is an error."""
    reader = csv.DictReader(lines, strict=True)
    start = 1  # the line a record starts on: a quoted field may span lines
    try:
        header = reader.fieldnames or []
        if len(header) > max_columns:
            raise FormatError(
                filename,
                1,
                None,
                f"the header has {len(header)} columns; at most {max_columns} "
                "(ASSAY_MAX_CSV_COLUMNS)",
            )
        (check_header or _check_header)(header, filename)
        seen: set[str] = set()  # linear: header.count() per column took 20 s on 40,000
        duplicated = next((name for name in header if name in seen or seen.add(name)), None)
        if duplicated is not None:
            name = excerpt(duplicated, get_settings().error_excerpt_chars)
            raise FormatError(filename, 1, name, f"column '{name}' appears twice")
        start = reader.line_num + 1
        for record in reader:
            if None in record:
                raise FormatError(
                    filename, reader.line_num, None, "more values than header columns"
                )
            if any(value is None for value in record.values()):
                raise FormatError(
                    filename, reader.line_num, None, "fewer values than header columns"
                )
            yield reader.line_num, record
            start = reader.line_num + 1
    except csv.Error as err:
        message = f"malformed CSV: {err}"
        if "unexpected end of data" in str(err):
            message += " (a quoted value that starts here is never closed)"
        raise FormatError(filename, start, None, message) from None


def _records_jsonl(
    lines: Iterable[str], filename: str, max_depth: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = strict_json.loads(raw, max_depth)
        except json.JSONDecodeError as err:
            raise FormatError(filename, number, None, f"invalid JSON: {err.msg}") from None
        except strict_json.JsonRefused as err:
            field = str(err.path[0]) if err.path else None
            raise FormatError(filename, number, field, err.message) from None
        except ValueError as err:
            raise FormatError(filename, number, None, f"invalid JSON: {err}") from None
        if not isinstance(record, dict):
            raise FormatError(filename, number, None, "each line must be a JSON object")
        _check_header(list(record), filename, number)
        yield number, record


def _check_header(columns: Sequence[str], filename: str, line: int = 1) -> None:
    missing = [name for name in (TEXT_FIELD, LABEL_FIELD) if name not in columns]
    if missing:
        found = excerpt(", ".join(columns), get_settings().error_excerpt_chars) or "none"
        raise FormatError(
            filename,
            line,
            missing[0],
            f"missing column '{missing[0]}' (found: {found}; "
            f"required: text, label; optional: {', '.join(OPTIONAL_FIELDS)})",
        )


def as_text(value: Any, filename: str, line: int, name: str) -> str:
    """A cell as text, exactly as given: leading spaces or a leading tab can be meaning (code,
    poetry, a formula a spreadsheet should not run), so text is never stripped here."""
    if isinstance(value, str):
        if "\x00" in value:  # PostgreSQL cannot store it in text
            raise FormatError(filename, line, name, "contains a NUL character (\\u0000)")
        return value
    if name == "id" and isinstance(value, float):
        # 1 and 1.0 are one number in JSON: a JSON number id must be whole, so two rows can
        # never name the same item as "1" and "1.0"
        raise FormatError(filename, line, name, f"a numeric id must be a whole number, not {value}")
    if name != TEXT_FIELD and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # ids and labels are often numbers in JSONL; a text is never one
    raise FormatError(filename, line, name, f"expected a string, got {type(value).__name__}")


def _optional(record: dict[str, Any], name: str, filename: str, line: int) -> str | None:
    """A key-like cell (label, id, split): surrounding whitespace is a typing slip, not a
    different label or id, so it is stripped."""
    value = record.get(name)
    if value is None:
        return None
    value = as_text(value, filename, line, name).strip()
    return value or None


class RecordIds:
    """The split and external id of each record of one file (every kind's CSV shares the
    ``id`` and ``split`` columns); remembers only the ids seen (for duplicates), which the row
    limit bounds."""

    def __init__(self, filename: str):
        self.filename = filename
        self.seen_ids: dict[str, int] = {}

    def check(self, line: int, record: dict[str, Any]) -> tuple[str | None, str, bool]:
        """(split, external id, whether the file gave the id): the id defaults to the row
        number and must be unique within the file."""
        filename = self.filename
        split = _optional(record, "split", filename, line)
        if split is not None and split not in SPLITS:
            raise FormatError(filename, line, "split", f"split must be one of {', '.join(SPLITS)}")
        given = _optional(record, "id", filename, line)
        external_id = given or str(len(self.seen_ids) + 1)
        if len(external_id) > ID_MAX_LENGTH:
            raise FormatError(filename, line, "id", f"id longer than {ID_MAX_LENGTH} characters")
        first = self.seen_ids.setdefault(external_id, line)
        if first != line:
            raise FormatError(
                filename, line, "id", f"duplicate id '{external_id}' (first on line {first})"
            )
        return split, external_id, given is not None


class _RowChecker(RecordIds):
    """Validates one record at a time."""

    def __init__(self, filename: str, labels: Sequence[str] | None, require_label: bool):
        super().__init__(filename)
        self.require_label = require_label
        self.allowed = set(labels) if labels is not None else None

    def row(self, line: int, record: dict[str, Any]) -> Row:
        filename = self.filename
        body = as_text(record.get(TEXT_FIELD), filename, line, TEXT_FIELD)
        if not body.strip():
            raise FormatError(filename, line, TEXT_FIELD, "empty text")
        label = _optional(record, LABEL_FIELD, filename, line)
        if label is None and self.require_label:
            raise FormatError(filename, line, LABEL_FIELD, "empty label")
        reference = _optional(record, "reference_label", filename, line)
        for name, value in ((LABEL_FIELD, label), ("reference_label", reference)):
            if value is not None and self.allowed is not None and value not in self.allowed:
                raise FormatError(
                    filename,
                    line,
                    name,
                    f"unknown label '{value}' (project labels: {', '.join(sorted(self.allowed))})",
                )
        split, external_id, id_given = self.check(line, record)
        extra = {
            k: v for k, v in record.items() if k not in (TEXT_FIELD, LABEL_FIELD, *OPTIONAL_FIELDS)
        }
        return Row(line, external_id, body, label, split, reference, extra, id_given)


def iter_rows(
    binary: IO[bytes],
    filename: str,
    *,
    labels: Sequence[str] | None,
    require_label: bool = True,
    max_rows: int | None = None,
) -> Iterator[Row]:
    """Validated rows of a seekable binary CSV or JSONL file (by extension: .jsonl/.json/.ndjson
    or else CSV), one at a time.

    ``labels`` is the project's label set: any other label is an error. Ids default to the
    row number and must be unique within the file. Strict UTF-8 (a BOM is allowed).
    """
    settings = get_settings()

    def read(text: TextIO) -> Records:
        if filename.lower().endswith(JSONL_SUFFIXES):
            return _records_jsonl(text, filename, settings.max_json_depth)
        return records_csv(text, filename, settings.max_csv_columns)

    checker = _RowChecker(filename, labels, require_label)
    yield from record_rows(binary, filename, max_rows, read, checker.row)


def iter_file_rows(path: Path, filename: str | None = None, **options: Any) -> Iterator[Row]:
    """``iter_rows`` over a file on disk; errors name ``filename`` (default: the file's name)."""
    with path.open("rb") as binary:
        yield from iter_rows(binary, filename or path.name, **options)


def parse_dataset(
    data: bytes,
    filename: str,
    *,
    labels: Sequence[str] | None,
    require_label: bool = True,
    max_rows: int | None = None,
) -> list[Row]:
    """All rows of a small in-memory file (the scoring CLI's inputs); see ``iter_rows``."""
    return list(
        iter_rows(
            io.BytesIO(data),
            filename,
            labels=labels,
            require_label=require_label,
            max_rows=max_rows,
        )
    )
