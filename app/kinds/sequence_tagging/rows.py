"""A sequence-tagging upload (CoNLL or JSONL) as the rows every kind's import stores: one row
per sentence, its tokens joined by spaces as the text, its entities as the annotation string
(``annotation.encode``) and its tokens in the payload."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import IO

from app.core.config import get_settings
from app.kinds.errors import FormatError
from app.kinds.rows import JSONL_SUFFIXES, Row, bad_utf8_line, is_blank
from app.kinds.sequence_tagging.annotation import encode
from app.kinds.sequence_tagging.formats import Parsed, read_conll, read_jsonl

TOKENS_KEY = "tokens"  # Item.payload's key for the sentence's tokens


def parse(binary: IO[bytes], filename: str) -> Parsed:
    """The whole file, read by its extension (.jsonl/.json/.ndjson: JSONL; else CoNLL)."""
    if is_blank(binary):
        raise FormatError(filename, None, None, "the file is empty")
    settings = get_settings()
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    try:
        if filename.lower().endswith(JSONL_SUFFIXES):
            return read_jsonl(
                text,
                filename,
                max_tokens=settings.max_sentence_tokens,
                max_depth=settings.max_json_depth,
            )
        return read_conll(text, filename, max_tokens=settings.max_sentence_tokens)
    except UnicodeDecodeError:
        raise bad_utf8_line(binary, filename) from None
    finally:
        text.detach()


def iter_rows(
    binary: IO[bytes],
    filename: str,
    *,
    labels: Sequence[str] | None,
    require_label: bool = True,
    max_rows: int | None = None,
) -> Iterator[Row]:
    """One row per sentence; an entity type outside ``labels`` (the project's types) is an
    error naming the sentence's line. Every sentence has an annotation (no entities is one),
    so ``require_label`` holds by construction."""
    parsed = parse(binary, filename)
    if not parsed.sentences:
        raise FormatError(filename, None, None, "the file has no sentences")
    allowed = set(labels) if labels is not None else None
    for number, sentence in enumerate(parsed.sentences, start=1):
        if max_rows is not None and number > max_rows:
            raise FormatError(
                filename, sentence.line, None, f"more than {max_rows} sentences (the upload limit)"
            )
        for span in sentence.spans:
            if allowed is not None and span.label not in allowed:
                known = ", ".join(sorted(allowed))
                raise FormatError(
                    filename,
                    sentence.line,
                    "tag",
                    f"unknown entity type '{span.label}' (project types: {known})",
                )
        given = sentence.external_id
        yield Row(
            line=sentence.line,
            external_id=given or str(number),
            text=" ".join(sentence.tokens),
            label=encode(sentence.spans),
            extra={TOKENS_KEY: list(sentence.tokens)},
            id_given=given is not None,
        )
