"""What every task kind's file reader shares: the row it yields (one stored item) and the
byte-level checks (blank file, first non-UTF-8 line) made before parsing."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import IO, Any

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
