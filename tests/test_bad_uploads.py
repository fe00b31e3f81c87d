"""Malformed uploads through the real API endpoint, on SQLite and PostgreSQL: each is a 422
naming the file, line and field, with a message saying what is wrong, and stores nothing.

The cases already in tests/test_api.py (wrong columns, unknown label, empty file, header only,
bad UTF-8 in CSV, broken JSON, empty label, duplicate CSV id) and tests/test_import_stream.py
(bad rows batches apart) are not repeated here.
"""

from __future__ import annotations

import pytest

from tests.support import demo_rows, to_csv
from tests.test_api import count_rows, upload

OK = b'{"text": "fine", "label": "fresh"}\n'
DEEP = b"[" * 40 + b"]" * 40  # over ASSAY_MAX_JSON_DEPTH (32)
WIDE = b",".join([b"text", b"label"] + [b"c%d" % i for i in range(40_000)]) + b"\n"
WIDE += b"fine,fresh" + b",x" * 40_000 + b"\n"  # quadratic before: 20 s, and then accepted
# WIDE holds ASSAY_MAX_CSV_COLUMNS (a 422 before any per-column work); WIDE_REPEATED, with the
# cap raised past it, holds the linear duplicate-column check: its one repeated name is last.
WIDE_REPEATED = b",".join([b"text", b"label"] + [b"c%d" % i for i in range(40_000)] + [b"c39999"])

CASES = [
    # (data, filename, line, field, words in the message)
    (b"text\nnice film\n", "s.csv", 1, "label", "missing column 'label'"),
    (b"text,label\ngood,fresh\n  ,rotten\n", "s.csv", 3, "text", "empty text"),
    (b"text,label,split\ngood,fresh,validation\n", "s.csv", 2, "split", "split must be one of"),
    (b"text,label,reference_label\nok,fresh,mouldy\n", "s.csv", 2, "reference_label", "mouldy"),
    (b'text,label\ngood,fresh\n"bad,rotten\nworse,rotten\n', "s.csv", 3, None, "never closed"),
    (b"text,label\ngood,fresh,extra\n", "s.csv", 2, None, "more values than header"),
    (b"text,label\ngood\n", "s.csv", 2, None, "fewer values than header"),
    (b"text,text,label\na,b,fresh\n", "s.csv", 1, "text", "appears twice"),
    (b"text,label\ngood\x00film,fresh\n", "s.csv", 2, "text", "NUL"),
    (b"id,text,label\n" + b"i" * 201 + b",good,fresh\n", "s.csv", 2, "id", "longer than 200"),
    (b"text,label\ngood,fresh\nbad\xc3", "s.csv", 3, None, "not valid UTF-8"),
    (b"\xef\xbb\xbf", "s.csv", None, None, "empty"),
    (b"text,label\nfine,fresh\n", "x" * 300 + ".csv", None, None, "file name longer than"),
    (OK + b'{"label": "fresh"}\n', "s.jsonl", 2, "text", "missing column 'text'"),
    (b'{"text": ["a"], "label": "fresh"}\n', "s.jsonl", 1, "text", "expected a string"),
    (b'{"text": "a", "label": true}\n', "s.jsonl", 1, "label", "expected a string"),
    (OK + b'{"text": 5, "label": "fresh"}\n', "s.jsonl", 2, "text", "expected a string, got int"),
    (OK + b"[1, 2]\n", "s.jsonl", 2, None, "must be a JSON object"),
    (b'{"text": NaN, "label": "fresh"}\n', "s.jsonl", 1, None, "NaN is not a JSON value"),
    (OK + b'{"text": "caf\xe9", "label": "fresh"}\n', "s.jsonl", 2, None, "not valid UTF-8"),
    (b'{"text": "a", "label": "fresh", "id": "x\\u0000"}\n', "s.jsonl", 1, "id", "NUL"),
    (OK.replace(b"}", b', "id": 7}') * 2, "s.jsonl", 2, "id", "duplicate id '7'"),
    (b"  \n\n", "s.jsonl", None, None, "empty"),
    (OK + b'{"text": "a\\ud800", "label": "fresh"}\n', "s.jsonl", 2, "text", "lone UTF-16"),
    (b'{"text": "a", "label": "fresh", "m": {"\\udc00": 1}}\n', "s.jsonl", 1, "m", "surrogate"),
    (OK + b'{"text": "a", "label": "fresh", "m": ' + DEEP + b"}\n", "s.jsonl", 2, "m", "deeper"),
    (b'{"text": "a", "label": "fresh", "x": ' + b"[" * 100_000, "s.jsonl", 1, None, "deeper"),
    (b'{"text": "a", "label": "fresh", "label": "rotten"}\n', "s.jsonl", 1, None, "twice"),
    (
        OK.replace(b"}", b', "id": 1}') + OK.replace(b"}", b', "id": 1.0}'),
        "s.jsonl",
        2,
        "id",
        "whole",
    ),
    (WIDE, "s.csv", 1, None, "40002 columns"),
]
IDS = [
    "csv-missing-label-column",
    "csv-missing-text",
    "csv-bad-split",
    "csv-unknown-reference-label",
    "csv-unbalanced-quotes",
    "csv-too-many-values",
    "csv-too-few-values",
    "csv-duplicate-column",
    "csv-nul-in-text",
    "csv-id-too-long",
    "csv-utf8-truncated-at-end",
    "csv-bom-only",
    "csv-file-name-too-long",
    "jsonl-missing-text",
    "jsonl-text-not-a-string",
    "jsonl-label-not-a-string",
    "jsonl-text-a-number",
    "jsonl-line-not-an-object",
    "jsonl-nan",
    "jsonl-bad-utf8",
    "jsonl-nul-in-id",
    "jsonl-duplicate-id",
    "jsonl-blank-only",
    "jsonl-lone-surrogate-in-text",
    "jsonl-lone-surrogate-in-a-key",
    "jsonl-nested-over-the-depth-limit",
    "jsonl-nested-past-the-recursion-limit",
    "jsonl-duplicate-key",
    "jsonl-ids-1-and-1.0",
    "csv-40000-columns",
]


def _refused_and_nothing_stored(client, headers, project_id, data, filename):
    from app.models import Dataset, Item

    # a good file first: the bad one must leave it as it is
    assert upload(client, headers, project_id, to_csv(demo_rows(3))).status_code == 201
    response = upload(client, headers, project_id, data, filename=filename)
    assert response.status_code == 422, response.text
    assert count_rows(Item) == 3 and count_rows(Dataset) == 1
    return response.json()


@pytest.mark.parametrize(("data", "filename", "line", "field", "words"), CASES, ids=IDS)
def test_malformed_upload_names_file_line_and_field_and_stores_nothing(
    client, admin_headers, project, data, filename, line, field, words
):
    error = _refused_and_nothing_stored(client, admin_headers, project["id"], data, filename)
    assert (error["file"], error["line"], error["field"]) == (filename, line, field), error
    assert words in error["message"], error


@pytest.mark.parametrize("filename", ["s.csv", "s.jsonl"])
def test_more_rows_than_the_limit_names_the_first_extra_line(
    client, admin_headers, project, monkeypatch, filename
):
    from app.core.config import get_settings

    monkeypatch.setattr(get_settings(), "max_upload_rows", 4)
    data = to_csv(demo_rows(5)) if filename.endswith(".csv") else OK * 5
    error = _refused_and_nothing_stored(client, admin_headers, project["id"], data, filename)
    line = 6 if filename.endswith(".csv") else 5  # the CSV header is line 1
    assert (error["file"], error["line"], error["field"]) == (filename, line, None), error
    assert "more than 4 rows" in error["message"]


def test_wide_header_with_a_repeated_column_is_named(client, admin_headers, project, monkeypatch):
    """With ASSAY_MAX_CSV_COLUMNS raised to 50,000, a 40,001-column header whose last column
    repeats another reaches the duplicate-column check itself: a 422 naming the column. Its
    speed (one pass, where header.count() per column took 10 s here) is measured by
    ``python -m bench.wide_header``, not asserted."""
    from app.core.config import get_settings

    monkeypatch.setattr(get_settings(), "max_csv_columns", 50_000)
    data = WIDE_REPEATED + b"\n" + b"fine,fresh" + b",x" * 40_001 + b"\n"
    error = _refused_and_nothing_stored(client, admin_headers, project["id"], data, "s.csv")
    assert (error["file"], error["line"], error["field"]) == ("s.csv", 1, "c39999"), error
    assert error["message"] == "column 'c39999' appears twice"
