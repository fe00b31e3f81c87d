"""Benchmark 2: extension triage (InfFeed objective 2), which items to re-annotate.

The demo's split: 1,000 gold training snippets, an 8,000-snippet extension with VADER's silver
labels, 1,000 gold dev snippets, 2,752 test snippets. A ranking picks the extension items to
re-annotate (their gold label replaces the silver one); the head is retrained and its test
macro-F1 reported, beside all-silver, all-gold and leaving the extension out. A second table
also leaves the most suspicious unreviewed silver items out of training, the amount chosen on
dev (costs no annotation).

    python -m bench.triage           # writes bench/results/triage.md
"""

from __future__ import annotations

import numpy as np

from bench.common import L2, load_corpus, machine, macro_f1, split, write_table
from workers.engine import fit_logistic_head
from workers.engine.inffeed import (
    cleanlab_ranker,
    influence_ranker,
    loss_ranker,
    prune_by_ranker,
    random_ranker,
    triage_rounds,
)

SIZES = {"gold": 1000, "extension": 8000, "dev": 1000}
BUDGETS = (0.001, 0.01, 0.05, 0.10)


def main() -> None:
    corpus = load_corpus()
    parts = split(len(corpus.gold), SIZES, seed=0)
    train = np.concatenate([parts["gold"], parts["extension"]])
    X, y_gold, y_silver = corpus.X[train], corpus.gold[train], corpus.gold[train].copy()
    ext = np.zeros(len(train), dtype=bool)
    ext[len(parts["gold"]) :] = True
    y_silver[ext] = corpus.silver[parts["extension"]]
    Xd, yd = corpus.X[parts["dev"]], corpus.gold[parts["dev"]]
    Xt, yt = corpus.X[parts["rest"]], corpus.gold[parts["rest"]]

    def test_predictions(labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        head = fit_logistic_head(X, labels, 2, l2=L2, sample_weight=weights)
        return head.predict_proba(Xt).argmax(axis=1)

    def test_f1(labels: np.ndarray, weights: np.ndarray | None = None) -> float:
        return macro_f1(yt, test_predictions(labels, weights))

    silver, gold = test_f1(y_silver), test_f1(y_gold)
    dropped = test_f1(y_silver, (~ext).astype(float))

    def recovered(f1: float) -> str:
        return f"{f1:.3f} ({(f1 - silver) / (gold - silver):.0%})"

    rankers = {
        "dev influence (Assay)": influence_ranker(Xd, yd, 2, l2=L2),
        "cleanlab (tuned)": cleanlab_ranker(2),
        "training loss": loss_ranker(2, l2=L2),
        "random": random_ranker(0),
    }
    rows, picked = [], {}
    for name, ranker in rankers.items():
        row = [name]
        for budget in BUDGETS:
            step = triage_rounds(
                X,
                y_silver,
                y_gold,
                ext,
                Xd,
                yd,
                ranker=ranker,
                budget_fraction=budget,
                rounds=1,
                l2=L2,
            )[-1]
            row.append(recovered(test_f1(step.labels)))
            if budget == 0.05:
                picked[name] = step
                row.append(f"{np.mean(y_silver[step.chosen] != y_gold[step.chosen]):.0%}")
        rows.append(row)
        print(row, flush=True)
    write_table(
        "triage",
        "Extension triage: test macro-F1 after re-annotating part of the extension",
        ["ranking", *(f"{b:.1%}" for b in BUDGETS[:3]), "wrong among the 5%", f"{BUDGETS[3]:.0%}"],
        [[r[0], r[1], r[2], r[3], r[4], r[5]] for r in rows],
        note=f"In brackets: share of the gap between all-silver ({silver:.3f}) and all-gold "
        f"({gold:.3f}) recovered. Leaving the extension out entirely: {dropped:.3f}. "
        f"35% of the extension's silver labels are wrong. Head l2={L2:g}; {machine()}. "
        "Reproduce: `python -m bench.triage`.",
    )
    prune_rows, prune_preds = [], {}
    for name in ("dev influence (Assay)", "cleanlab (tuned)"):
        step = picked[name]
        reviewed = np.zeros(len(train), dtype=bool)
        reviewed[step.chosen] = True
        pruned = prune_by_ranker(
            X,
            step.labels,
            ext & ~reviewed,
            Xd,
            yd,
            ranker=rankers[name],
            l2=L2,
            n_classes=2,
            reviewed_mask=reviewed,
        )
        prune_preds[name] = test_predictions(step.labels, pruned.weights)
        prune_rows.append(
            [
                name,
                f"{pruned.fraction:.0%}",
                pruned.dev_f1[pruned.fraction],
                recovered(macro_f1(yt, prune_preds[name])),
            ]
        )
        print(prune_rows[-1], flush=True)
    write_table(
        "triage_prune",
        "Re-annotate 5%, then leave the most suspicious unreviewed silver out",
        ["ranking", "unreviewed silver left out (chosen on dev)", "dev F1", "test F1"],
        prune_rows,
        note=f"{paired_bootstrap(yt, *prune_preds.values())} Reproduce: `python -m bench.triage`.",
    )


def paired_bootstrap(y: np.ndarray, a: np.ndarray, b: np.ndarray, draws: int = 2000) -> str:
    """How sure the test F1 difference (a - b) is, resampling test items (seeded)."""
    rng = np.random.default_rng(0)
    diffs = np.empty(draws)
    for i in range(draws):
        rows = rng.integers(0, len(y), len(y))
        diffs[i] = macro_f1(y[rows], a[rows]) - macro_f1(y[rows], b[rows])
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    return (
        f"Test F1 difference, Assay minus cleanlab: {macro_f1(y, a) - macro_f1(y, b):+.3f} "
        f"(95% paired bootstrap interval {lo:+.3f} to {hi:+.3f}; Assay ahead in "
        f"{np.mean(diffs > 0):.0%} of {draws:,} resamples of the test set)."
    )


if __name__ == "__main__":
    main()
