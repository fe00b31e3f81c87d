"""The `assay` command as a user runs it: a fresh process each time."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys

from tests.support import demo_rows, to_csv


def run(
    args: list[str], env: dict[str, str], timeout: float = 600, **kw
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
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
    # nothing changed: the noise check's policy, saying what it served and why
    assert {r["estimator"] for r in scored} == {"noise_check"}
    pattern = (
        r"noise_check served (exact_head|cleanlab|cleanlab_finetuned): "
        r"refitting without the \d+% of items"
    )
    served = re.search(pattern, result.stdout)
    assert served, result.stdout
    # fine-tuning is off on a CPU (auto): where cleanlab is served, what fine-tuning would cost
    hint = re.search(
        r"Fine-tuning the encoder in folds \(ASSAY_FINETUNE=on\) .*: "
        r"(under a minute|about \d+ min) for these items",
        result.stdout,
    )
    assert bool(hint) == (served.group(1) == "cleanlab"), result.stdout
    assert sorted(int(r["suspicion_rank"]) for r in scored) == list(range(1, 61))
    # influence on the gold dev set, asked for by name, ranks the most harmful first
    exact = run(
        ["score", str(train), "--dev", str(dev), "--out", str(out), "--estimator", "exact_head"],
        {"ASSAY_DATA_DIR": str(tmp_path / "data")},
    )
    assert exact.returncode == 0, exact.stderr
    scored = list(csv.DictReader(out.open()))
    assert {r["estimator"] for r in scored} == {"exact_head"} and "served" not in exact.stdout
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


def test_score_with_fine_tuning_off_and_on(tmp_path):
    """With too few gold dev items to check the noise, the default serves cleanlab. With
    ASSAY_FINETUNE=off it says what the fine-tuned path would cost (the dev rows join both
    folds' training); =on (two folds of one epoch, to keep it short) it serves cleanlab on the
    encoder fine-tuned in folds, and says so."""
    train, dev = tmp_path / "train.csv", tmp_path / "dev.csv"
    out = tmp_path / "scores.csv"
    train.write_bytes(to_csv(demo_rows(40)))
    dev.write_bytes(to_csv(demo_rows(3, offset=40, silver=False)))
    env = {
        "ASSAY_DATA_DIR": str(tmp_path / "data"),
        "ASSAY_FINETUNE": "off",
        "ASSAY_FINETUNE_FOLDS": "2",
        "ASSAY_FINETUNE_EPOCHS": "1",
        # (40 x 1 + 3 x 2) x 1 item-epochs: 276 s (without the dev rows 240 s, "about 4 min")
        "ASSAY_FINETUNE_CPU_S_PER_1000_ITEM_EPOCHS": "6000",
        "ASSAY_EMBED_MAX_LENGTH": "32",
    }
    command = ["score", str(train), "--dev", str(dev), "--out", str(out)]
    off = run(command, env)
    assert off.returncode == 0, off.stderr[-3000:]
    assert "noise_check served cleanlab: fewer than 4 gold dev items" in off.stdout, off.stdout
    assert (
        "Fine-tuning the encoder in folds (ASSAY_FINETUNE=on) may let cleanlab find more "
        "random label errors: about 5 min for these items on a CPU" in off.stdout
    ), off.stdout
    result = run(command, {**env, "ASSAY_FINETUNE": "on"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "noise_check served cleanlab_finetuned: fewer than 4 gold dev items to check the noise "
        "against: cleanlab on the encoder fine-tuned in folds" in result.stdout
    ), result.stdout
    assert "ASSAY_FINETUNE=on)" not in result.stdout  # no hint: it ran
    scored = list(csv.DictReader(out.open()))
    assert sorted(int(r["suspicion_rank"]) for r in scored) == list(range(1, 41))


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


def _project_in(data_dir, name: str = "Reviews") -> int:
    """A project in ``data_dir``'s SQLite database, made through the app's own services."""
    from app.core.db import migrate, session_scope
    from app.services.projects import create_project
    from tests.support import assay_env

    with assay_env(data_dir):
        migrate()
        with session_scope() as session:
            project = create_project(session, name, ["fresh", "rotten"])
            session.flush()
            return project.id


def test_import_into_a_missing_project_is_refused_before_the_file_is_read(tmp_path):
    """A named pipe that nobody writes: opening it blocks, so only a command that looks the
    project up first can answer."""
    pipe = tmp_path / "rows.csv"
    os.mkfifo(pipe)
    env = {"ASSAY_DATA_DIR": str(tmp_path / "data")}
    result = run(["import", "Nope", str(pipe)], env, timeout=60)  # read first: never ends
    assert result.returncode == 1
    assert result.stderr == "Error: no project 'Nope'\n"


def test_import_error_starts_on_a_line_of_its_own(tmp_path):
    data_dir = tmp_path / "data"
    project_id = _project_in(data_dir)
    rows = demo_rows(300)
    rows[-1]["label"] = "mouldy"
    source = tmp_path / "rows.csv"
    source.write_bytes(to_csv(rows))
    env = {"ASSAY_DATA_DIR": str(data_dir), "ASSAY_IMPORT_BATCH_ROWS": "50"}
    result = run(["import", str(project_id), str(source)], env)
    assert result.returncode == 1
    # text mode reads the progress line's \r as a line end; the error must not join the last
    progress, _, error = result.stderr.rpartition("\nError: ")
    assert progress.splitlines()[-1].startswith("importing") and progress.endswith("%")
    assert "unknown label 'mouldy'" in error and error.endswith("(nothing was imported)\n")


def test_demo_without_serving_says_how_to_serve_it(tmp_path):
    """The demo project exists already (so nothing trains): the command ends with what to run
    and where to go, not a URL that nothing answers."""
    from app.cli.demo import PROJECT_NAME

    data_dir = tmp_path / "data"
    project_id = _project_in(data_dir, PROJECT_NAME)
    result = run(["demo", "--no-serve", "--port", "8123"], {"ASSAY_DATA_DIR": str(data_dir)})
    assert result.returncode == 0, result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"the demo is ready but not served: run `assay serve --port 8123`, then open "
        rf"http://127\.0\.0\.1:8123/projects/{project_id}/queue and log in as admin / \S+",
        last,
    ), result.stdout
