"""The `assay` command as a user runs it: a fresh process each time."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

from tests.support import demo_rows, to_csv


def run(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        **kw,
    )


def test_web_process_never_imports_torch():
    out = subprocess.run(
        [sys.executable, "-c", "import app.main, sys; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"


def test_score_writes_one_ranked_row_per_item(tmp_path):
    train, dev, out = tmp_path / "train.csv", tmp_path / "dev.csv", tmp_path / "scores.csv"
    rows = demo_rows(60)
    train.write_bytes(to_csv(rows))
    dev.write_bytes(to_csv(demo_rows(30, offset=60, silver=False)))
    result = run(
        ["score", str(train), "--dev", str(dev), "--out", str(out)],
        {"ASSAY_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.returncode == 0, result.stderr
    scored = list(csv.DictReader(out.open()))
    assert [r["id"] for r in scored] == [r["id"] for r in rows]
    assert set(scored[0]) == {
        "id",
        "label",
        "predicted_label",
        "self_influence",
        "dev_influence",
        "suspicion_rank",
        "estimator",
    }
    assert {r["estimator"] for r in scored} == {"exact_head"}
    assert sorted(int(r["suspicion_rank"]) for r in scored) == list(range(1, 61))
    by_rank = sorted(scored, key=lambda r: int(r["suspicion_rank"]))
    dev_influence = [float(r["dev_influence"]) for r in by_rank]
    assert dev_influence == sorted(dev_influence)


def test_score_reports_the_bad_line(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("text,label\ngood,pos\n,neg\n")
    result = run(
        ["score", str(train), "--out", str(tmp_path / "o.csv")],
        {"ASSAY_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.returncode != 0
    assert "train.csv, line 3, field 'text': empty text" in result.stderr
    assert not (tmp_path / "o.csv").exists()


def test_production_mode_refuses_to_start_without_a_secret(tmp_path):
    result = run(
        ["serve"],
        {"ASSAY_DATA_DIR": str(tmp_path), "ASSAY_BROKER_URL": "redis://x", "ASSAY_SECRET_KEY": ""},
    )
    assert result.returncode != 0 and "ASSAY_SECRET_KEY is not set" in result.stderr


def test_score_with_a_chosen_estimator(tmp_path):
    train, out = tmp_path / "train.csv", tmp_path / "scores.csv"
    train.write_bytes(to_csv(demo_rows(40)))
    result = run(
        ["score", str(train), "--out", str(out), "--estimator", "loss"],
        {"ASSAY_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.returncode == 0, result.stderr
    assert {r["estimator"] for r in csv.DictReader(out.open())} == {"loss"}
    bad = run(
        ["score", str(train), "--out", str(out), "--estimator", "astrology"],
        {"ASSAY_DATA_DIR": str(tmp_path / "data")},
    )
    assert bad.returncode == 2 and "astrology" in bad.stderr


def test_score_with_the_fine_tuned_encoder(tmp_path):
    train, dev, out = tmp_path / "train.csv", tmp_path / "dev.csv", tmp_path / "scores.csv"
    train.write_bytes(to_csv(demo_rows(40)))
    dev.write_bytes(to_csv(demo_rows(20, offset=40, silver=False)))
    result = run(
        ["score", str(train), "--dev", str(dev), "--out", str(out), "--estimator", "ihvp"],
        {"ASSAY_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scored = list(csv.DictReader(out.open()))
    assert {r["estimator"] for r in scored} == {"ihvp"}
    assert sorted(int(r["suspicion_rank"]) for r in scored) == list(range(1, 41))
    assert all(float(r["self_influence"]) > 0 for r in scored)


def test_unknown_default_estimator_is_a_clear_configuration_error(tmp_path):
    result = run(
        ["migrate"], {"ASSAY_DATA_DIR": str(tmp_path), "ASSAY_DEFAULT_ESTIMATOR": "astrology"}
    )
    assert result.returncode != 0
    assert "unknown estimator 'astrology'" in result.stderr


def test_score_output_is_safe_to_open_in_a_spreadsheet(tmp_path):
    """Ids and labels come from the user's file; a formula among them is neutralised (the
    export's rule), the numbers stay numbers."""
    train, out = tmp_path / "train.csv", tmp_path / "scores.csv"
    rows = demo_rows(40)
    formulas = {"fresh": "=1+1", "rotten": "@SUM(A1)"}
    for i, row in enumerate(rows):
        row["label"] = formulas[row["label"]]
        row["id"] = f"-{i}+1" if i % 2 else f"=cmd|' /C calc'!A{i}"
    train.write_bytes(to_csv(rows))
    result = run(
        ["score", str(train), "--out", str(out), "--estimator", "loss"],
        {"ASSAY_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.returncode == 0, result.stderr
    scored = list(csv.DictReader(out.open()))
    assert [r["id"] for r in scored] == ["'" + r["id"] for r in rows]
    assert {r["label"] for r in scored} == {"'=1+1", "'@SUM(A1)"}
    assert {r["predicted_label"] for r in scored} <= {"'=1+1", "'@SUM(A1)"}
    assert all(float(r["self_influence"]) == float(r["self_influence"]) for r in scored)
