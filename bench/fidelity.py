"""Benchmark 4: how close each estimator comes to leave-one-out retraining.

Frozen-encoder model (logistic head on MiniLM embeddings): 1,000 Rotten Tomatoes snippets with
VADER silver labels train it, 500 gold snippets are the dev set. For a sample of training items
the estimator's own model is retrained without each one and the actual change of the mean dev
loss is compared with the predicted one (Spearman and Pearson).

    python -m bench.fidelity         # writes bench/results/fidelity.md and fidelity.png
"""

from __future__ import annotations

from scipy.stats import rankdata

from bench.common import L2, Timer, figure, load_corpus, machine, split, write_table
from workers.engine.fidelity import loo_fidelity

N_TRAIN, N_DEV, N_ITEMS, SEED = 1000, 500, 60, 0
ESTIMATORS = ("exact_head", "tracin", "turnover_dropout")


def main() -> None:
    corpus = load_corpus()
    parts = split(len(corpus.gold), {"train": N_TRAIN, "dev": N_DEV}, seed=SEED)
    X, y = corpus.X[parts["train"]], corpus.silver[parts["train"]]
    Xd, yd = corpus.X[parts["dev"]], corpus.gold[parts["dev"]]
    rows, reports = [], {}
    for name in ESTIMATORS:
        with Timer() as timer:
            report = loo_fidelity(
                name, X, y, 2, X_dev=Xd, y_dev=yd, l2=L2, n_items=N_ITEMS, seed=SEED
            )
        reports[name] = report
        rows.append([name, report["spearman"], report["pearson"], report["n_items"], timer.seconds])
        print(rows[-1], flush=True)
    with figure(
        "fidelity",
        f"Predicted vs leave-one-out change of the dev loss ({N_ITEMS} items)",
        xlabel="rank of the predicted change",
        ylabel="rank of the actual change",
    ) as ax:
        for name, report in reports.items():
            ax.scatter(
                rankdata(report["predicted"]),
                rankdata(report["actual"]),
                s=12,
                label=f"{name} (Spearman {report['spearman']:.2f})",
            )
    write_table(
        "fidelity",
        "Fidelity: predicted vs leave-one-out change of the dev loss",
        ["estimator", "Spearman", "Pearson", "items retrained", "seconds"],
        rows,
        note=f"{N_TRAIN:,} VADER-silver training snippets, {N_DEV} gold dev snippets, head "
        f"l2={L2:g}, seed {SEED}; {machine()}. Reproduce: `python -m bench.fidelity`.",
    )


if __name__ == "__main__":
    main()
