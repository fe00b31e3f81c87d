"""Relevance judgments as stored rows: svmlight/LETOR (``grade qid:Q i:v ... # doc``) or CSV
(``query``, ``doc``, ``grade``, optional ``text`` and ``split``, every other column a numeric
feature). One row per judgment; its query is the row's group, so a page finds the query's
other judgments with one indexed lookup.

Which format: a ``.csv`` name is CSV; any other name (``.svmlight``, ``.letor``, ``.txt``...)
is svmlight. The payload keeps the query, the document id (svmlight: the line's comment, else
the line number) and the features as a name -> value map (svmlight: the index as a string),
so files with different feature sets line up by name when a model is trained. A judgment
without a document id (an svmlight line without a comment) stores ``doc`` None and is named by
its line.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

from app.core.config import get_settings
from app.core.text import excerpt
from app.kinds.errors import FormatError
from app.kinds.rows import Row, bad_utf8_line, is_blank

QID_KEY, DOC_KEY, FEATURES_KEY = "qid", "doc", "features"  # Item.payload's keys
CSV_SUFFIX = ".csv"
CSV_REQUIRED = ("query", "doc", "grade")
CSV_OPTIONAL = ("text", "split")
SPLITS = ("train", "dev", "test")
ID_MAX_LENGTH = 200  # items.external_id and items.group_key
SUMMARY_FEATURES = 5  # features named in a judgment's text when it has no text of its own


def canonical_grade(value: str) -> str | None:
    """A grade as the project stores it ("2", never "2.0" or " 2"); None when it is not a
    whole number >= 0."""
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0 or number != int(number):
        return None
    return str(int(number))


def summary(name: str, features: dict[str, float]) -> str:
    """A judgment's text when the file gives none: what names it (its document id, else its
    line) and its largest features."""
    top = sorted(features.items(), key=lambda kv: -abs(kv[1]))[:SUMMARY_FEATURES]
    shown = ", ".join(f"{key}={value:g}" for key, value in top)
    return name + (f" · top features {shown}" if shown else "")


def feature_order(names: Iterable[str]) -> list[str]:
    """Feature names in model order: svmlight indices numerically, other names as first seen."""
    unique = list(dict.fromkeys(names))
    if all(name.isdigit() for name in unique):
        return sorted(unique, key=int)
    return unique


class _Judgments:
    """Checks shared by both formats: grade on the scale, ids unique, the row limit."""

    def __init__(self, filename: str, labels: Sequence[str] | None, max_rows: int | None):
        self.filename, self.max_rows = filename, max_rows
        self.allowed = list(labels) if labels is not None else None
        self.seen: dict[str, int] = {}

    def error(self, line: int | None, field: str | None, message: str) -> FormatError:
        return FormatError(self.filename, line, field, message)

    def grade(self, value: str, line: int) -> str:
        grade = canonical_grade(value.strip())
        shown = excerpt(value, get_settings().error_excerpt_chars)
        if grade is None:
            raise self.error(line, "grade", f"grade '{shown}' is not a whole number >= 0")
        if self.allowed is not None and grade not in self.allowed:
            scale = ", ".join(self.allowed)
            raise self.error(
                line, "grade", f"grade {grade} is not on the project's scale ({scale})"
            )
        return grade

    def value(self, raw: str, line: int, field: str) -> float:
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            shown = excerpt(raw, get_settings().error_excerpt_chars)
            raise self.error(line, field, f"'{shown}' is not a finite number")
        return number

    def row(
        self,
        line: int,
        qid: str,
        doc: str | None,
        grade: str,
        features: dict[str, float],
        text: str | None = None,
        split: str | None = None,
    ) -> Row:
        if self.max_rows is not None and len(self.seen) >= self.max_rows:
            raise self.error(line, None, f"more than {self.max_rows} judgments (the upload limit)")
        if not qid:
            raise self.error(line, "qid", "empty query id")
        if len(qid) > ID_MAX_LENGTH:
            raise self.error(line, "qid", f"query id longer than {ID_MAX_LENGTH} characters")
        external_id = f"{qid}:{doc}" if doc else str(line)
        if len(external_id) > ID_MAX_LENGTH:
            raise self.error(line, "doc", f"document id longer than {ID_MAX_LENGTH} characters")
        first = self.seen.setdefault(external_id, line)
        if first != line:
            raise self.error(
                line, "doc", f"document '{doc}' judged twice in query {qid} (first on line {first})"
            )
        return Row(
            line=line,
            external_id=external_id,
            text=text or summary(f"document {doc}" if doc else f"line {line}", features),
            label=grade,
            split=split,
            extra={QID_KEY: qid, DOC_KEY: doc, FEATURES_KEY: features},
            id_given=external_id != str(line),
            group=qid,
        )


def _svmlight(lines: Iterable[str], judged: _Judgments, max_features: int) -> Iterator[Row]:
    for number, raw in enumerate(lines, start=1):
        body, _, comment = raw.partition("#")
        tokens = body.split()
        if not tokens:
            continue  # blank or comment-only line
        grade = judged.grade(tokens[0], number)
        if len(tokens) < 2 or not tokens[1].startswith("qid:"):
            raise judged.error(number, "qid", "qid missing (expected 'grade qid:Q i:v ...')")
        features: dict[str, float] = {}
        for token in tokens[2:]:
            index, colon, value = token.partition(":")
            field = f"feature {index}"
            if not colon or not index.isdigit():
                raise judged.error(number, field, f"expected index:value, got '{token[:40]}'")
            if int(index) == 0:
                raise judged.error(number, field, "feature indices start at 1")
            if int(index) > max_features:
                raise judged.error(
                    number,
                    field,
                    f"feature index above {max_features} (ASSAY_RANKING_MAX_FEATURES)",
                )
            name = str(int(index))
            if name in features:
                raise judged.error(number, field, f"feature {name} given twice")
            features[name] = judged.value(value, number, field)
        yield judged.row(number, tokens[1][4:], comment.strip() or None, grade, features)


def _csv(lines: Iterable[str], judged: _Judgments, max_features: int) -> Iterator[Row]:
    reader = csv.reader(lines, strict=True)
    header = next(reader, None) or []
    missing = [name for name in CSV_REQUIRED if name not in header]
    if missing:
        found = excerpt(", ".join(header), get_settings().error_excerpt_chars) or "none"
        raise judged.error(1, missing[0], f"missing column '{missing[0]}' (found: {found})")
    if len(set(header)) != len(header):
        raise judged.error(1, None, "a column name appears twice")
    features = [name for name in header if name not in (*CSV_REQUIRED, *CSV_OPTIONAL)]
    if len(features) > max_features:
        raise judged.error(
            1, None, f"more than {max_features} feature columns (ASSAY_RANKING_MAX_FEATURES)"
        )
    start = 2
    try:
        for record in reader:
            line = start
            start = reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                raise judged.error(line, None, f"{len(record)} values for {len(header)} columns")
            cells = dict(zip(header, record, strict=True))
            split = cells.get("split", "").strip() or None
            if split is not None and split not in SPLITS:
                raise judged.error(line, "split", f"split must be one of {', '.join(SPLITS)}")
            yield judged.row(
                line,
                cells["query"].strip(),
                cells["doc"].strip() or None,
                judged.grade(cells["grade"], line),
                {name: judged.value(cells[name], line, name) for name in features},
                text=cells.get("text", "").strip() or None,
                split=split,
            )
    except csv.Error as err:
        raise judged.error(start, None, f"malformed CSV: {err}") from None


def iter_rows(
    binary: IO[bytes],
    filename: str,
    *,
    labels: Sequence[str] | None,
    require_label: bool = True,
    max_rows: int | None = None,
) -> Iterator[Row]:
    """One validated row per judgment, read one at a time. Every judgment has a grade, so
    ``require_label`` holds by construction; ``labels`` is the project's grade scale."""
    if is_blank(binary):
        raise FormatError(filename, None, None, "the file is empty")
    judged = _Judgments(filename, labels, max_rows)
    max_features = get_settings().ranking_max_features
    read = _csv if filename.lower().endswith(CSV_SUFFIX) else _svmlight
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    try:
        yield from read(text, judged, max_features)
    except UnicodeDecodeError:
        raise bad_utf8_line(binary, filename) from None
    finally:
        text.detach()
    if not judged.seen:
        raise FormatError(filename, None, None, "the file has no judgments")


def read_judgments(data: bytes, filename: str) -> list[Row]:
    """Every judgment of a small in-memory file (``assay score``'s inputs), any grade."""
    return list(iter_rows(io.BytesIO(data), filename, labels=None))


def describe_grade(value: str | None, payload: dict[str, Any]) -> str:
    return f"grade {value}" if value is not None else ""
