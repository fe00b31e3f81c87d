"""Benchmark 5: speed and peak memory of exact head influence, Assay vs Captum.

Same model (the logistic head on frozen MiniLM embeddings, trained on 8,000 Rotten Tomatoes
snippets), same data, one run: self-influence of the 8,000 training items, and the full
train x test influence matrix for 2,000 test items. Captum's equivalent estimator is
``NaiveInfluenceFunction`` with the full parameter space (``projection_dim`` = all 770
parameters) and the same L2 as ``hessian_reg`` (Captum sums the per-example Hessians where
Assay averages them, so its regulariser is n * l2), so both compute exact inverse-Hessian
influence. Each measurement runs in its own process; peak memory is the highest resident set
size above the process's own before the timed part, sampled every 5 ms.

    python -m bench.speed            # writes bench/results/speed.md and speed.png
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

import numpy as np

from bench.common import (
    L2,
    PeakMemory,
    Timer,
    figure,
    load_corpus,
    machine,
    split,
    write_table,
)

N_TRAIN, N_TEST = 8000, 2000
CASES = ("assay:self", "assay:matrix", "assay:stream", "captum:self", "captum:matrix")


def _data():
    corpus = load_corpus()
    parts = split(len(corpus.gold), {"train": N_TRAIN, "test": N_TEST}, seed=0)
    X, y = corpus.X[parts["train"]], corpus.gold[parts["train"]]
    Xt, yt = corpus.X[parts["test"]], corpus.gold[parts["test"]]
    return X, y, Xt, yt


def _assay(case: str, X, y, Xt, yt) -> np.ndarray:
    from workers.engine import ExactHeadInfluence, fit_logistic_head

    head = fit_logistic_head(X, y, 2, l2=L2)
    with Timer() as timer, PeakMemory() as memory:
        inf = ExactHeadInfluence(head, X, y, l2=L2)
        if case == "self":
            out = inf.self_influence()
        elif case == "matrix":  # one array, filled block by block (no second copy)
            out = np.empty((len(Xt), len(X)))
            for rows, block in inf.influence(Xt, yt):
                out[rows] = block
        else:  # each block used as it comes (as top-k does), never one 8,000 x 2,000 array
            out = np.concatenate([block.max(axis=1) for _, block in inf.influence(Xt, yt)])
    return out, timer.seconds, memory.peak_mib


def _captum(case: str, X, y, Xt, yt) -> np.ndarray:
    import torch
    from captum.influence import NaiveInfluenceFunction
    from torch.utils.data import DataLoader, TensorDataset

    from workers.engine import fit_logistic_head

    head = fit_logistic_head(X, y, 2, l2=L2)
    model = torch.nn.Linear(X.shape[1], 2).double()
    with torch.no_grad():
        model.weight.copy_(torch.as_tensor(head.weight))
        model.bias.copy_(torch.as_tensor(head.bias))
    checkpoint = f"{tempfile.mkdtemp()}/head.pt"
    torch.save(model.state_dict(), checkpoint)
    train = DataLoader(
        TensorDataset(torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y)), batch_size=500
    )

    def load(m, path):
        m.load_state_dict(torch.load(path))
        return 1.0

    with Timer() as timer, PeakMemory() as memory:
        inf = NaiveInfluenceFunction(
            model,
            train,
            checkpoint,
            checkpoints_load_func=load,
            loss_fn=torch.nn.CrossEntropyLoss(reduction="none"),
            batch_size=500,
            projection_dim=model.weight.numel() + model.bias.numel(),
            hessian_reg=len(y) * L2,
        )
        if case == "self":
            out = inf.self_influence(train).numpy()
        else:
            out = inf.influence(
                (torch.as_tensor(Xt, dtype=torch.float64), torch.as_tensor(yt))
            ).numpy()
    return out, timer.seconds, memory.peak_mib


def run_case(case: str) -> None:
    """Child process: one measurement, printed as JSON with the result for agreement checks."""
    library, what = case.split(":")
    X, y, Xt, yt = _data()
    out, seconds, peak_mib = (_assay if library == "assay" else _captum)(what, X, y, Xt, yt)
    np.save(f"{tempfile.gettempdir()}/assay-bench-{library}-{what}.npy", out)
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib}))


def main() -> None:
    from scipy.stats import spearmanr

    _data()  # embed once (cached) before anything is timed
    results = {}
    for case in CASES:
        out = subprocess.run(
            [sys.executable, "-m", "bench.speed", case], check=True, capture_output=True, text=True
        )
        results[case] = json.loads(out.stdout.strip().splitlines()[-1])
        print(case, results[case], flush=True)
    rows = []
    for what, theirs_what, title in (
        ("self", "self", f"self-influence, {N_TRAIN:,} train"),
        ("matrix", "matrix", f"train x test matrix, {N_TRAIN:,} x {N_TEST:,}, as one array"),
        ("stream", "matrix", "the same matrix, streamed in blocks (how Assay uses it)"),
    ):
        ours, theirs = results[f"assay:{what}"], results[f"captum:{theirs_what}"]
        a = np.load(f"{tempfile.gettempdir()}/assay-bench-assay-{what}.npy")
        c = np.load(f"{tempfile.gettempdir()}/assay-bench-captum-{theirs_what}.npy")
        if what == "stream":
            c = c.max(axis=1)  # the same per-target maximum from Captum's matrix
        a, c = a.ravel(), c.ravel()
        rho = spearmanr(a[::97], c[::97])[0] if what == "matrix" else spearmanr(a, c)[0]
        rows.append(
            [
                title,
                ours["seconds"],
                theirs["seconds"],
                f"{theirs['seconds'] / ours['seconds']:.0f}x",
                f"{ours['peak_mib']:.0f}",
                f"{theirs['peak_mib']:.0f}",
                f"{rho:.4f}",
            ]
        )
    with figure(
        "speed",
        "Exact head influence: Assay vs Captum (same model, same run)",
        yscale="log",
        ylabel="seconds",
    ) as ax:
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [r[1] for r in rows], 0.4, label="Assay")
        ax.bar(x + 0.2, [r[2] for r in rows], 0.4, label="Captum")
        ax.set_xticks(x, ["self-influence", "matrix", "matrix, streamed"])
    write_table(
        "speed",
        "Speed: exact head influence, Assay vs Captum NaiveInfluenceFunction",
        [
            "computation",
            "Assay s",
            "Captum s",
            "speed-up",
            "Assay peak MiB",
            "Captum peak MiB",
            "Spearman(Assay, Captum)",
        ],
        rows,
        note=f"Same head (l2={L2:g}) and data in one run; {machine()}. "
        "Peak MiB: resident memory the computation added at its highest (sampled every 5 ms). "
        "Reproduce: `python -m bench.speed`.",
    )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        run_case(sys.argv[1])
    else:
        main()
