"""Ranking judgments' import and export (app.kinds.ranking): svmlight/LETOR and CSV read into
one row per judgment, every error with its file, line and field, the MSLR sample against
scikit-learn's svmlight reader, the grade check, and the svmlight export read back. Pure: no
database, no server."""

from __future__ import annotations

import gzip
import io
from importlib import resources

import numpy as np
import pytest
from sklearn.datasets import load_svmlight_file

from app.kinds.errors import FormatError
from app.kinds.ranking.export import svmlight_line
from app.kinds.ranking.formats import DOC_KEY, FEATURES_KEY, QID_KEY, iter_rows
from app.kinds.registry import KINDS, BadAnnotation
from app.kinds.rows import Row

GRADES = ["0", "1", "2", "3", "4"]


def read(text: str, filename: str = "train.svmlight", labels=GRADES) -> list[Row]:
    return list(iter_rows(io.BytesIO(text.encode()), filename, labels=labels))


def refused(text: str, line: int | None, field: str | None, filename="train.svmlight") -> str:
    with pytest.raises(FormatError) as error:
        read(text, filename)
    assert error.value.filename == filename
    assert (error.value.line, error.value.field) == (line, field), str(error.value)
    return error.value.message


def test_svmlight_lines_become_judgments_with_their_query_and_document():
    rows = read(
        "# a comment line\n"
        "2 qid:7 1:0.5 3:-1e-3 # doc-a\n"
        "\n"
        "0.0 qid:7 2:4\n"
        "1 qid:8 1:1 2:2 3:3 # GX01-22\n"
    )
    assert [r.line for r in rows] == [2, 4, 5]
    assert [r.label for r in rows] == ["2", "0", "1"]  # "0.0" is grade 0
    assert [r.group for r in rows] == ["7", "7", "8"]
    assert [r.external_id for r in rows] == ["7:doc-a", "4", "8:GX01-22"]
    assert [r.id_given for r in rows] == [True, False, True]
    assert rows[0].extra == {QID_KEY: "7", DOC_KEY: "doc-a", FEATURES_KEY: {"1": 0.5, "3": -0.001}}
    assert rows[1].extra[DOC_KEY] is None and rows[1].extra[FEATURES_KEY] == {"2": 4.0}
    # no text in svmlight: the document id and its largest features stand in
    assert rows[2].text == "document GX01-22 · top features 3=3, 2=2, 1=1"


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("x qid:1 1:1\n", 1, "grade", "not a whole number"),
        ("1.5 qid:1 1:1\n", 1, "grade", "not a whole number"),
        ("1 qid:1 1:1\n5 qid:1 1:2\n", 2, "grade", "not on the project's scale"),
        ("1 1:1 2:2\n", 1, "qid", "qid missing"),
        ("1 qid: 1:1\n", 1, "qid", "empty query id"),
        ("1 qid:1 1:abc\n", 1, "feature 1", "not a finite number"),
        ("1 qid:1 1:nan\n", 1, "feature 1", "not a finite number"),
        ("1 qid:1 0:1\n", 1, "feature 0", "start at 1"),
        ("1 qid:1 2:1 2:3\n", 1, "feature 2", "given twice"),
        ("1 qid:1 7\n", 1, "feature 7", "index:value"),
        ("1 qid:1 1001:1\n", 1, "feature 1001", "ASSAY_RANKING_MAX_FEATURES"),
        ("1 qid:1 1:1 # d\n2 qid:1 1:2 # d\n", 2, "doc", "judged twice"),
        ("# only a comment\n", None, None, "no judgments"),
    ],
)
def test_svmlight_errors_name_line_and_field(text, line, field, words):
    assert words in refused(text, line, field)


def test_csv_judgments_with_text_split_and_named_features():
    rows = read(
        "query,doc,text,grade,bm25,clicks,split\n"
        "q1,d1,Cheap flights to Oslo,3,12.5,4,\n"
        "q1,d2,,0,1.0,0,\n"
        "q2,d1,Oslo weather,1,3,1,dev\n",
        "judgments.csv",
    )
    assert [r.line for r in rows] == [2, 3, 4]
    assert [(r.group, r.external_id, r.label, r.split) for r in rows] == [
        ("q1", "q1:d1", "3", None),
        ("q1", "q1:d2", "0", None),
        ("q2", "q2:d1", "1", "dev"),
    ]
    assert rows[0].text == "Cheap flights to Oslo"
    assert rows[1].text == "document d2 · top features bm25=1, clicks=0"
    assert rows[0].extra[FEATURES_KEY] == {"bm25": 12.5, "clicks": 4.0}


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("query,grade,f1\nq,1,2\n", 1, "doc", "missing column 'doc'"),
        ("query,doc,grade,f1\nq,d,1,high\n", 2, "f1", "not a finite number"),
        ("query,doc,grade,f1\nq,d,9,1\n", 2, "grade", "not on the project's scale"),
        ("query,doc,grade,f1\n,d,1,1\n", 2, "qid", "empty query id"),
        ("query,doc,grade,f1\nq,d,1\n", 2, None, "3 values for 4 columns"),
        ("query,doc,grade,split,f1\nq,d,1,holdout,1\n", 2, "split", "split must be one of"),
    ],
)
def test_csv_errors_name_line_and_field(text, line, field, words):
    assert words in refused(text, line, field, "judgments.csv")


def test_the_mslr_sample_matches_scikit_learns_reader():
    """5,000 judgments x 136 dense features: every value, grade and query as sklearn reads
    them (an independent svmlight parser)."""
    raw = gzip.decompress(
        resources.files("app").joinpath("demo_data/mslr_sample_train.svmlight.gz").read_bytes()
    )
    rows = list(iter_rows(io.BytesIO(raw), "mslr.svmlight", labels=GRADES))
    X, y, qid = load_svmlight_file(io.BytesIO(raw), query_id=True, dtype=np.float64)
    assert len(rows) == X.shape[0] == 5000
    ours = np.array(
        [[r.extra[FEATURES_KEY].get(str(j + 1), 0.0) for j in range(136)] for r in rows]
    )
    np.testing.assert_array_equal(ours, X.toarray())
    assert [int(r.label) for r in rows] == y.astype(int).tolist()
    assert [r.group for r in rows] == [str(q) for q in qid]
    assert len({r.group for r in rows}) == 43


def test_exported_svmlight_lines_read_back_to_the_same_judgments():
    text = "2 qid:7 1:0.75000 3:-1e-3 10:3 # doc-a\n0 qid:7 2:4\n"
    rows = read(text)
    records = [
        {"payload": r.extra, "final_label": grade}
        for r, grade in zip(rows, ["4", "1"], strict=True)
    ]
    exported = "".join(svmlight_line(r) for r in records)
    assert exported == "4 qid:7 1:0.75 3:-0.001 10:3 # doc-a\n1 qid:7 2:4\n"
    again = read(exported)
    assert [r.extra for r in again] == [r.extra for r in rows]
    assert [r.label for r in again] == ["4", "1"]


def test_a_grade_annotation_is_one_of_the_scale_and_canonical():
    check = KINDS["ranking"].check
    assert check(GRADES, {}, "3") == "3"
    assert check(GRADES, {}, "3.0") == "3"
    for bad in ("5", "-1", "high", ""):
        with pytest.raises(BadAnnotation):
            check(GRADES, {}, bad)


def test_the_app_lists_the_engines_ranking_estimators():
    from app.kinds.estimators import ESTIMATORS
    from workers.engine.ranking import DEFAULT_ESTIMATOR, RankingEstimator

    ranking = {name for name, info in ESTIMATORS.items() if info.task == "ranking"}
    assert ranking == {e.value for e in RankingEstimator}
    assert KINDS["ranking"].default_estimator == DEFAULT_ESTIMATOR.value
