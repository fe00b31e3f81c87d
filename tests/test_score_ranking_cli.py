"""`assay score --task ranking` as a user runs it: a fresh process, real MSLR judgments
(app/demo_data's sample: 8 training queries with flipped grades, 4 gold dev queries), its rows
checked against the file's lines and its influence against brute-force leave-one-out refits."""

from __future__ import annotations

import csv
import gzip
from importlib import resources

import numpy as np
import pytest
import torch
from sklearn.datasets import load_svmlight_file

from tests.test_cli import run
from workers.engine.listwise import Standardisation, fit, ranking_problem

COLUMNS = ["line", "qid", "influence", "self_influence", "suspicion_rank", "estimator"]
FLIPPED = 8  # judgments whose grade is moved by 2 or more


def queries(split: str, n: int) -> list[str]:
    """The lines of the sample's first ``n`` queries."""
    name = f"demo_data/mslr_sample_{split}.svmlight.gz"
    lines = gzip.decompress(resources.files("app").joinpath(name).read_bytes()).decode()
    kept, seen = [], []
    for line in lines.splitlines():
        qid = line.split()[1]
        if qid not in seen:
            seen.append(qid)
        if len(seen) > n:
            break
        kept.append(line + "\n")
    return kept


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ranking")
    train = queries("train", 8)
    rng = np.random.default_rng(0)
    for i in rng.choice(len(train), FLIPPED, replace=False):
        grade, rest = train[i].split(" ", 1)
        train[i] = f"{4 if int(grade) < 2 else 0} {rest}"
    # a comment line and a blank line: the 0-based line numbers skip them
    (tmp / "train.svmlight").write_text(
        "# MSLR excerpt\n" + "".join(train[:50]) + "\n" + "".join(train[50:])
    )
    (tmp / "dev.svmlight").write_text("".join(queries("test", 4)))
    out = tmp / "scores.csv"
    result = run(
        [
            "score",
            str(tmp / "train.svmlight"),
            "--task",
            "ranking",
            "--dev",
            str(tmp / "dev.svmlight"),
            "--out",
            str(out),
        ],
        {"ASSAY_DATA_DIR": str(tmp / "data")},
    )
    assert result.returncode == 0, result.stderr
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return tmp, result.stdout, rows


def test_one_row_per_judgment_at_its_line_and_query(scored):
    tmp, stdout, rows = scored
    lines = (tmp / "train.svmlight").read_text().splitlines()
    assert list(rows[0]) == COLUMNS
    judged = [(i, line.split()[1][4:]) for i, line in enumerate(lines) if line and line[0] != "#"]
    assert [(int(r["line"]), r["qid"]) for r in rows] == judged
    assert sorted(int(r["suspicion_rank"]) for r in rows) == list(range(1, len(rows) + 1))
    assert {r["estimator"] for r in rows} == {"grade_gap|pointwise_residual"}
    assert "L2 penalty 0.01" in stdout and "listnet loss" in stdout and "standardised" in stdout
    assert f"wrote {len(rows)} rows" in stdout


def test_influence_predicts_leave_one_out_refits(scored):
    """The predicted change of the dev loss (no penalty) for 12 random judgments against
    refitting without each (the engine's fit; sklearn reads the files)."""
    tmp, _, rows = scored
    X, y, q = load_svmlight_file(str(tmp / "train.svmlight"), query_id=True, dtype=np.float64)
    Xd, yd, qd = load_svmlight_file(
        str(tmp / "dev.svmlight"), query_id=True, dtype=np.float64, n_features=X.shape[1]
    )
    st = Standardisation.of(X.toarray())
    train = ranking_problem(X.toarray(), y, q, standardisation=st)
    dev = ranking_problem(Xd.toarray(), yd, qd, standardisation=st)
    theta = fit(train)
    base = dev.data_loss(theta).item()
    influence = np.array([float(r["influence"]) for r in rows])
    units = np.random.default_rng(1).choice(len(rows), 12, replace=False)
    actual = []
    for i in units:
        weights = torch.ones(len(y), dtype=torch.float64)
        weights[i] = 0.0
        actual.append(dev.data_loss(fit(train, weights, start=theta)).item() - base)
    actual = np.array(actual)
    assert np.corrcoef(influence[units], actual)[0, 1] >= 0.99
    np.testing.assert_allclose(influence[units], actual, rtol=0.2, atol=0.05 * np.abs(actual).max())


def test_flipped_grades_rank_above_the_rest(scored):
    """The flipped judgments' mean suspicion rank is in the top half (the file's own grades
    against the sample's: an independent record of which were flipped)."""
    tmp, _, rows = scored
    original = {line.split(" ", 1)[1]: line.split()[0] for line in queries("train", 8)}
    lines = (tmp / "train.svmlight").read_text().splitlines()
    flipped = [
        int(r["suspicion_rank"])
        for r in rows
        if original[lines[int(r["line"])].split(" ", 1)[1] + "\n"] != lines[int(r["line"])][0]
    ]
    assert len(flipped) == FLIPPED
    assert np.mean(flipped) < len(rows) / 2


def test_a_bad_grade_names_file_and_line(tmp_path):
    (tmp_path / "bad.svmlight").write_text("1 qid:1 1:1\nhigh qid:1 1:2\n")
    result = run(
        [
            "score",
            str(tmp_path / "bad.svmlight"),
            "--task",
            "ranking",
            "--out",
            str(tmp_path / "o"),
        ],
        {"ASSAY_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.returncode != 0
    assert "bad.svmlight, line 2, field 'grade'" in result.stderr
