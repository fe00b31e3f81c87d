"""`assay score --task survival` as a user runs it: a fresh process, gbsg2 records (70 train,
40 dev) from the bundled CSV. The influence column is checked against brute-force
leave-one-out retraining written here in numpy (Newton's method on the Breslow partial
likelihood, independent of the engine), with the design matrix the CLI's settings describe;
the usage errors say what to pass."""

from __future__ import annotations

import csv
import io
from importlib import resources

import numpy as np
import pytest

from tests.test_cli import run

N_TRAIN, N_DEV = 70, 40
PENALTY = 0.01
NUMERIC = ["age", "tsize", "pnodes", "progrec", "estrec"]
CATEGORICAL = ["horTh", "menostat", "tgrade"]


def gbsg2_rows() -> list[dict[str, str]]:
    text = resources.files("app.demo_data").joinpath("gbsg2.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def write(path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def design(train: list[dict], other: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Numeric columns standardised with the training mean and sd (ddof=1), categorical ones
    one-hot with the sorted training levels, the first dropped: for train and other rows."""
    blocks_train, blocks_other = [], []
    for c in NUMERIC:
        values = np.array([float(r[c]) for r in train])
        mean, sd = values.mean(), values.std(ddof=1)
        blocks_train.append((values - mean) / sd)
        blocks_other.append((np.array([float(r[c]) for r in other]) - mean) / sd)
    for c in CATEGORICAL:
        for level in sorted({r[c] for r in train})[1:]:
            blocks_train.append(np.array([r[c] == level for r in train], dtype=float))
            blocks_other.append(np.array([r[c] == level for r in other], dtype=float))
    return np.stack(blocks_train, 1), np.stack(blocks_other, 1)


def partial_nll(theta, x, t, e) -> float:
    """Breslow negative partial log-likelihood over the records, divided by their number."""
    s = x @ theta
    total = sum(np.log(np.exp(s[t >= t[k]]).sum()) - s[k] for k in np.flatnonzero(e))
    return float(total) / len(t)


def fit(x, t, e) -> np.ndarray:
    """Newton's method on the penalised objective, to a gradient below 1e-12."""
    theta = np.zeros(x.shape[1])
    at_risk = t[None, :] >= t[:, None]  # [k, j]: j in k's risk set
    for _ in range(50):
        r = np.exp(x @ theta)
        g, h = PENALTY * theta * len(t), PENALTY * np.eye(len(theta)) * len(t)
        for k in np.flatnonzero(e):
            w = r * at_risk[k]
            mean = w @ x / w.sum()
            g += mean - x[k]
            h += (x.T * w) @ x / w.sum() - np.outer(mean, mean)
        step = np.linalg.solve(h, g)
        theta -= step
        if np.abs(g).max() < 1e-12 * len(t):
            break
    return theta


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("survival")
    rows = gbsg2_rows()
    train, dev = rows[:N_TRAIN], rows[N_TRAIN : N_TRAIN + N_DEV]
    write(tmp / "train.csv", train)
    write(tmp / "dev.csv", dev)
    out = tmp / "scores.csv"
    args = ["score", str(tmp / "train.csv"), "--task", "survival", "--duration", "time"]
    result = run(
        [*args, "--event", "cens", "--dev", str(tmp / "dev.csv"), "--out", str(out)],
        {"ASSAY_DATA_DIR": str(tmp / "data")},
    )
    assert result.returncode == 0, result.stderr
    with out.open(newline="") as handle:
        scores = list(csv.DictReader(handle))
    return {"train": train, "dev": dev, "scores": scores, "stdout": result.stdout, "tmp": tmp}


def test_one_row_per_record_with_the_defaults_said(scored):
    scores = scored["scores"]
    assert list(scores[0]) == ["id", "influence", "self_influence", "suspicion_rank", "estimator"]
    assert [r["id"] for r in scores] == [str(i) for i in range(N_TRAIN)]  # 0-based rows
    assert sorted(int(r["suspicion_rank"]) for r in scores) == list(range(1, N_TRAIN + 1))
    assert {r["estimator"] for r in scores} == {"cox_dev"}
    out = scored["stdout"]
    assert "L2 penalty 0.01" in out and "standardised" in out and "C-index train" in out


def test_influence_matches_brute_force_leave_one_out(scored):
    train, dev = scored["train"], scored["dev"]
    x, x_dev = design(train, dev)
    t = np.array([float(r["time"]) for r in train])
    e = np.array([int(r["cens"]) for r in train])
    t_dev = np.array([float(r["time"]) for r in dev])
    e_dev = np.array([int(r["cens"]) for r in dev])
    full = partial_nll(fit(x, t, e), x_dev, t_dev, e_dev)
    keep = np.ones(N_TRAIN, dtype=bool)
    loo = []
    for i in range(N_TRAIN):
        keep[i] = False
        loo.append(partial_nll(fit(x[keep], t[keep], e[keep]), x_dev, t_dev, e_dev) - full)
        keep[i] = True
    loo = np.array(loo)
    vif = np.array([float(r["influence"]) for r in scored["scores"]])
    assert np.corrcoef(vif, loo)[0, 1] > 0.98
    strongest = np.argsort(-np.abs(loo))[:10]
    assert (np.sign(vif[strongest]) == np.sign(loo[strongest])).all()


def test_an_id_column_names_the_rows(scored):
    tmp = scored["tmp"]
    rows = [{"id": f"p{i}", **r} for i, r in enumerate(scored["train"])]
    write(tmp / "ids.csv", rows)
    out = tmp / "ids_scores.csv"
    args = ["score", str(tmp / "ids.csv"), "--task", "survival", "--duration", "time"]
    result = run([*args, "--event", "cens", "--out", str(out)], {"ASSAY_DATA_DIR": str(tmp)})
    assert result.returncode == 0, result.stderr
    with out.open(newline="") as handle:
        scores = list(csv.DictReader(handle))
    assert [r["id"] for r in scores] == [f"p{i}" for i in range(N_TRAIN)]
    assert {r["estimator"] for r in scores} == {"cox_self"} and not scores[0]["influence"]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--task", "survival", "--event", "cens"], "--duration COL and --event COL"),
        (["--task", "survival", "--duration", "time"], "--duration COL and --event COL"),
        (["--duration", "time", "--event", "cens"], "apply to --task survival only"),
        (["--task", "survival", "--duration", "days", "--event", "cens"], "missing column 'days'"),
    ],
)
def test_usage_and_file_errors_say_what_to_pass(scored, extra, says):
    tmp = scored["tmp"]
    result = run(["score", str(tmp / "train.csv"), *extra, "--out", str(tmp / "x.csv")], {})
    assert result.returncode != 0 and says in result.stderr, result.stderr


def test_a_covariate_without_a_number_in_every_row_is_named(scored):
    tmp = scored["tmp"]
    rows = [dict(r) for r in scored["train"]]
    rows[5]["age"] = ""
    write(tmp / "blank.csv", rows)
    args = ["score", str(tmp / "blank.csv"), "--task", "survival", "--duration", "time"]
    result = run([*args, "--event", "cens", "--out", str(tmp / "x.csv")], {})
    assert result.returncode != 0
    assert "blank.csv: covariate 'age' needs a number in every row" in result.stderr
