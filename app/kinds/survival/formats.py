"""Survival uploads: a CSV with a header, one follow-up record per row.

The project's two labels name the mapped columns, ``[duration column, event column]``; their
cells become the annotation (``annotation.encode``): a duration is a positive finite number, an
event is 1 or 0 (``true``/``false`` in any case are read as 1/0). An ``id`` column, when there
is one, is the record's external id (else its 1-based row number); a ``split`` column may say
``train``, ``dev`` or ``test``, as in text classification's CSV. Every other column is a
covariate, kept as the raw text of its cell in the item's payload (``FIELDS_KEY``: a list of
``[column, value]`` pairs in the file's order, since a JSON object's key order is not kept by
every database) and summarised in the item's text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import IO, TextIO

from app.core.config import get_settings
from app.core.text import excerpt
from app.kinds.errors import FormatError
from app.kinds.rows import Records, Row, record_rows
from app.kinds.survival.annotation import BadAnnotation, duration_of, encode, event_of
from app.kinds.text_classification.formats import RecordIds, as_text, records_csv

FIELDS_KEY = "fields"  # Item.payload's key for the covariates, [[column, raw value], ...]
RESERVED = ("id", "split")
TEXT_MAX_CHARS = 500  # the item's readable summary of its covariates


def mapped_columns(labels: Sequence[str] | None, filename: str) -> tuple[str, str]:
    """The duration and event columns a project's labels name (exactly two)."""
    if labels is None or len(labels) != 2:
        got = "none" if labels is None else f"{len(labels)}: {', '.join(labels)}"
        raise FormatError(
            filename,
            None,
            None,
            "a survival project needs exactly two labels, the duration column and the event "
            f"column (got {got})",
        )
    duration, event = labels
    if duration in RESERVED or event in RESERVED:
        raise FormatError(filename, None, None, "'id' and 'split' cannot be mapped columns")
    return duration, event


def summary(fields: Sequence[Sequence[str]]) -> str:
    """The covariates as one short line, ``age 70 · horTh no · ...``."""
    text = " · ".join(f"{name} {value}" for name, value in fields)
    return excerpt(text, TEXT_MAX_CHARS) or "(no covariates)"


def _header_check(duration: str, event: str):
    def check(header: Sequence[str], filename: str) -> None:
        for name in (duration, event):
            if name not in header:
                found = excerpt(", ".join(header), get_settings().error_excerpt_chars) or "none"
                raise FormatError(
                    filename,
                    1,
                    name,
                    f"missing column '{name}' (found: {found}; the project maps duration to "
                    f"'{duration}' and event to '{event}')",
                )

    return check


def iter_rows(
    binary: IO[bytes],
    filename: str,
    *,
    labels: Sequence[str] | None,
    require_label: bool = True,
    max_rows: int | None = None,
) -> Iterator[Row]:
    """Validated rows of a seekable binary CSV, one at a time. With ``require_label`` False a
    row may leave both mapped cells blank (no annotation); one blank and one given is an error."""
    duration_col, event_col = mapped_columns(labels, filename)
    settings = get_settings()
    ids = RecordIds(filename)

    def read(text: TextIO) -> Records:
        check = _header_check(duration_col, event_col)
        return records_csv(text, filename, settings.max_csv_columns, check)

    def row(line: int, record: dict[str, str]) -> Row:
        cells = {name: as_text(value, filename, line, name) for name, value in record.items()}
        label = _annotation(cells, duration_col, event_col, filename, line, require_label)
        split, external_id, id_given = ids.check(line, cells)
        skip = {duration_col, event_col, *RESERVED}
        fields = [[name, value] for name, value in cells.items() if name not in skip]
        extra = {FIELDS_KEY: fields}
        return Row(line, external_id, summary(fields), label, split, extra=extra, id_given=id_given)

    yield from record_rows(binary, filename, max_rows, read, row)


def _annotation(
    cells: dict[str, str],
    duration_col: str,
    event_col: str,
    filename: str,
    line: int,
    require_label: bool,
) -> str | None:
    duration, event = cells[duration_col].strip(), cells[event_col].strip()
    if not require_label and not duration and not event:
        return None
    for name, value in ((duration_col, duration), (event_col, event)):
        if not value:
            raise FormatError(filename, line, name, "empty cell")
    try:
        return encode(duration_of(duration), event_of(event))
    except BadAnnotation as err:
        field = duration_col if str(err).startswith("duration") else event_col
        raise FormatError(filename, line, field, str(err)) from None
