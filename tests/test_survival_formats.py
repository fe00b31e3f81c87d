"""Survival import (app.kinds.survival): the annotation string's canonical form and checks,
the CSV reader's rows from the real gbsg2 and rossi files, and every error with its file, line
and field. Pure: no database, no server."""

from __future__ import annotations

import csv
import io
from importlib import resources

import pytest

from app.kinds.errors import FormatError
from app.kinds.registry import KINDS, BadAnnotation
from app.kinds.survival import annotation
from app.kinds.survival.formats import FIELDS_KEY, iter_rows

SPEC = KINDS["survival"]
LABELS = ["time", "cens"]


def read(text: str, labels=LABELS, **options):
    return list(iter_rows(io.BytesIO(text.encode()), "records.csv", labels=labels, **options))


def refused(text: str, line: int | None, field: str | None, labels=LABELS, **options) -> str:
    with pytest.raises(FormatError) as err:
        read(text, labels, **options)
    assert (err.value.line, err.value.field) == (line, field), str(err.value)
    assert str(err.value).startswith("records.csv")
    return err.value.message


# --- the annotation string ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("1814 1", "1814 1"),
        ("1814.0 1", "1814 1"),
        ("12.50 0", "12.5 0"),
        ("1e3 0", "1000 0"),
        ("0.00001 1", "0.00001 1"),
        (" 7 1 ", "7 1"),
    ],
)
def test_check_makes_annotations_canonical(given, canonical):
    assert SPEC.check(LABELS, {}, given) == canonical
    duration, event = annotation.decode(canonical)
    assert duration == float(given.split()[0]) and event == int(given.split()[1])


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("0 1", "positive"),
        ("-3 1", "positive"),
        ("inf 0", "finite"),
        ("nan 0", "finite"),
        ("abc 1", "not a number"),
        ("12 2", "event must be 1"),
        ("12 true", "event must be 1"),
        ("12", "<duration> <event>"),
        ("12  1", "<duration> <event>"),
        ("", "<duration> <event>"),
    ],
)
def test_check_refuses_what_is_not_a_follow_up(given, says):
    with pytest.raises(BadAnnotation, match=says):
        SPEC.check(LABELS, {}, given)


def test_describe_reads_the_follow_up():
    assert SPEC.describe("1814 1", {}) == "event at 1814"
    assert SPEC.describe("12.5 0", {}) == "censored at 12.5"
    assert SPEC.describe(None, {}) == ""


# --- the real files -------------------------------------------------------------------------


def demo(name: str) -> bytes:
    return resources.files("app.demo_data").joinpath(name).read_bytes()


def test_gbsg2_reads_every_record_with_its_covariates():
    data = demo("gbsg2.csv")
    expected = list(csv.DictReader(io.StringIO(data.decode())))
    rows = list(iter_rows(io.BytesIO(data), "gbsg2.csv", labels=LABELS))
    assert len(rows) == len(expected) == 686
    for row, record in zip(rows, expected, strict=True):
        duration, event = annotation.decode(row.label)
        assert duration == float(record["time"]) and event == int(record["cens"])
        covariates = {k: v for k, v in record.items() if k not in LABELS}
        assert dict(row.extra[FIELDS_KEY]) == covariates
        assert [name for name, _ in row.extra[FIELDS_KEY]] == list(covariates)  # file order
    assert [r.external_id for r in rows[:3]] == ["1", "2", "3"] and not rows[0].id_given
    assert rows[0].line == 2 and rows[0].text.startswith("horTh no · age 70")


def test_rossi_maps_its_own_columns():
    rows = list(iter_rows(io.BytesIO(demo("rossi.csv")), "rossi.csv", labels=["week", "arrest"]))
    assert len(rows) == 432
    assert rows[0].label == "20 1"
    assert [name for name, _ in rows[0].extra[FIELDS_KEY]] == [
        "fin", "age", "race", "wexp", "mar", "paro", "prio",
    ]  # fmt: skip


def test_id_split_and_event_words():
    rows = read("id,time,cens,age,split\na7,100,true,50,dev\nb2,12.50,FALSE,61,\nc,3,1,40,test\n")
    assert [(r.external_id, r.label, r.split) for r in rows] == [
        ("a7", "100 1", "dev"),
        ("b2", "12.5 0", None),
        ("c", "3 1", "test"),
    ]
    assert all(r.id_given for r in rows)
    assert rows[0].extra == {FIELDS_KEY: [["age", "50"]]}


def test_unlabelled_rows_when_labels_are_not_required():
    rows = read("time,cens,age\n,,50\n", require_label=False)
    assert rows[0].label is None


# --- errors ---------------------------------------------------------------------------------


def test_a_missing_mapped_column_names_the_header():
    message = refused("time,status,age\n1,1,2\n", 1, "cens")
    assert "missing column 'cens'" in message and "found: time, status, age" in message


def test_the_project_must_map_exactly_two_columns():
    assert "exactly two" in refused("time,cens\n1,1\n", None, None, labels=["time"])
    assert "exactly two" in refused("a,b,c\n1,1,1\n", None, None, labels=["a", "b", "c"])


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ("0,1,5", "time", "positive"),
        ("-1,1,5", "time", "positive"),
        ("x,1,5", "time", "not a number"),
        ("inf,1,5", "time", "finite"),
        (",1,5", "time", "empty"),
        ("10,2,5", "cens", "event must be 1"),
        ("10,yes,5", "cens", "event must be 1"),
        ("10,,5", "cens", "empty"),
    ],
)
def test_a_bad_cell_names_its_line_and_column(body, field, says):
    assert says in refused(f"time,cens,age\n5,1,3\n{body}\n", 3, field)


def test_other_row_errors():
    assert "duplicate id 'a'" in refused("id,time,cens\na,1,1\na,2,0\n", 3, "id")
    assert "split must be" in refused("time,cens,split\n1,1,holdout\n", 2, "split")
    assert "more than 1 rows" in refused("time,cens\n1,1\n2,1\n", 3, None, max_rows=1)
    assert "fewer values" in refused("time,cens,age\n1,1\n", 2, None)
    assert "header but no rows" in refused("time,cens\n", None, None)
    assert "empty" in refused("  \n", None, None)
    assert "appears twice" in refused("time,cens,age,age\n1,1,2,3\n", 1, "age")


def test_a_non_utf8_line_is_named():
    with pytest.raises(FormatError) as err:
        list(
            iter_rows(io.BytesIO(b"time,cens,name\n1,1,ok\n2,0,caf\xe9\n"), "r.csv", labels=LABELS)
        )
    assert err.value.line == 3 and "UTF-8" in err.value.message
