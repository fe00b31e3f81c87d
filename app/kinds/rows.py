"""What every task kind's file reader shares: the row it yields (one stored item), the
byte-level checks (blank file, first non-UTF-8 line) made before parsing and the loop over a
file's records (``record_rows``)."""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

from app.kinds.errors import FormatError

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
PEEK_BYTES = 1 << 16
BLANK = b" \t\r\n\x0b\x0c"


@dataclass
class Row:
    """One stored item as every kind's reader yields it: text, label (a kind's annotation
    string) and the rest of the record in ``extra``."""

    line: int
    external_id: str
    text: str
    label: str | None
    split: str | None = None
    reference_label: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # False: the file has no id here and the row's number stands in; such ids are the file's
    # own, so a re-import check (datasets.ImportMode) leaves them alone
    id_given: bool = True
    # the item's group (``Item.group_key``: a ranking judgment's query); None without one
    group: str | None = None


def bad_utf8_line(binary: IO[bytes], filename: str) -> FormatError:
    """Find the first line that is not UTF-8 by decoding again from the start (error path only,
    so the fast path can decode in large chunks)."""
    binary.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    number = 0
    for number, raw in enumerate(binary, start=1):
        try:
            decoder.decode(raw)
        except UnicodeDecodeError as err:
            return FormatError(
                filename,
                number,
                None,
                f"not valid UTF-8 (byte 0x{raw[err.start]:02x}); save as UTF-8",
            )
    return FormatError(filename, number or None, None, "not valid UTF-8 (truncated at the end)")


def is_blank(binary: IO[bytes]) -> bool:
    """Whether the file holds nothing but whitespace (a BOM allowed); reads only what it must."""
    first = True
    while chunk := binary.read(PEEK_BYTES):
        if first and chunk.startswith(codecs.BOM_UTF8):
            chunk = chunk[len(codecs.BOM_UTF8) :]
        first = False
        if chunk.strip(BLANK):
            binary.seek(0)
            return False
    binary.seek(0)
    return True


Records = Iterator[tuple[int, dict[str, Any]]]  # (line, record) per record of a file


def record_rows(
    binary: IO[bytes],
    filename: str,
    max_rows: int | None,
    read: Callable[[TextIO], Records],
    check: Callable[[int, dict[str, Any]], Row],
) -> Iterator[Row]:
    """``check(line, record)`` of each record ``read`` finds in a seekable binary file of
    strict UTF-8 (a BOM allowed), one at a time: an empty file, one with no records or with
    more than ``max_rows`` is an error. ``binary`` stays open (the caller owns it)."""
    if is_blank(binary):
        raise FormatError(filename, None, None, "the file is empty")
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    count = 0
    try:
        for line, record in read(text):
            if max_rows is not None and count >= max_rows:
                raise FormatError(
                    filename, line, None, f"more than {max_rows} rows (the upload limit)"
                )
            count += 1
            yield check(line, record)
    except UnicodeDecodeError:
        raise bad_utf8_line(binary, filename) from None
    finally:
        text.detach()
    if not count:
        raise FormatError(filename, None, None, "the file has a header but no rows")
