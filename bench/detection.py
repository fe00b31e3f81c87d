"""Benchmark 1: finding randomly flipped labels, every estimator and baseline in one run.

8,000 Rotten Tomatoes snippets with gold labels, 10% of them flipped uniformly at random
(seeded); 1,000 gold dev snippets for the dev-influence rankings. Each ranking orders the 8,000
training items by suspicion; we count the share of flipped items among the top 5%, 10% and
20%, and the ROC-AUC. cleanlab gets its best chance: out-of-fold probabilities from a logistic
head on the same embeddings, its regularisation tuned by cross-validation.

    python -m bench.detection        # writes bench/results/detection.md and detection.png
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from bench.common import L2, Timer, figure, load_corpus, machine, split, write_table
from workers.engine import score_training_set
from workers.engine.estimators import TEXT_ESTIMATORS
from workers.engine.scoring import BASELINES

N_TRAIN, N_DEV, NOISE, SEED = 8000, 1000, 0.10, 0
BUDGETS = (0.05, 0.10, 0.20)
# (label in the table, estimator, uses the gold dev set)
RANKINGS = [
    ("exact influence on dev loss", "exact_head", True),
    ("exact self-influence", "exact_head", False),
    ("TracIn on dev loss", "tracin", True),
    ("TracIn self-influence", "tracin", False),
    ("turn-over dropout on dev loss", "turnover_dropout", True),
    ("turn-over dropout self-influence", "turnover_dropout", False),
    ("fine-tuned TracIn on dev loss", "tracin_finetuned", True),
    ("fine-tuned TracIn self-influence", "tracin_finetuned", False),
    ("training loss", "loss", False),
    ("margin", "margin", False),
    ("cleanlab (tuned, cross-validated)", "cleanlab", False),
]


def flipped_labels(y: np.ndarray, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    flip = np.zeros(len(y), dtype=bool)
    flip[rng.choice(len(y), round(rate * len(y)), replace=False)] = True
    return np.where(flip, 1 - y, y), flip


def found_at(suspicion: np.ndarray, flipped: np.ndarray, budget: float) -> float:
    top = np.argsort(-suspicion, kind="stable")[: round(budget * len(suspicion))]
    return float(flipped[top].sum() / flipped.sum())


def main() -> None:
    corpus = load_corpus()
    parts = split(len(corpus.gold), {"train": N_TRAIN, "dev": N_DEV}, seed=SEED)
    yd = corpus.gold[parts["dev"]]
    y, flipped = flipped_labels(corpus.gold[parts["train"]], NOISE, SEED)
    texts = np.asarray(corpus.texts, dtype=object)
    rows, curves, runs = [], {}, {}
    for title, estimator, with_dev in RANKINGS:
        # One run per estimator gives both of its rankings (self-influence, dev influence).
        if estimator not in runs:
            inputs = texts if estimator in TEXT_ESTIMATORS else corpus.X
            with Timer() as timer:
                result = score_training_set(
                    inputs[parts["train"]],
                    y,
                    2,
                    X_dev=inputs[parts["dev"]],
                    y_dev=yd,
                    l2=L2,
                    k=1,
                    estimator=estimator,
                    ids=np.arange(N_TRAIN),
                )
            runs[estimator] = (result, timer.seconds)
        result, seconds = runs[estimator]
        if estimator in BASELINES:
            s = result.suspicion
        else:
            s = -result.dev_influence if with_dev else result.self_influence
        rows.append(
            [
                title,
                *(found_at(s, flipped, b) for b in BUDGETS),
                float(roc_auc_score(flipped, s)),
                seconds,
            ]
        )
        order = np.argsort(-s, kind="stable")
        curves[title] = np.cumsum(flipped[order]) / flipped.sum()
        print(rows[-1], flush=True)
    write_table(
        "detection",
        "Detection of 10% uniformly flipped labels (8,000 training items)",
        ["ranking", "found in top 5%", "top 10%", "top 20%", "ROC-AUC", "seconds"],
        rows,
        note=f"Rotten Tomatoes gold labels, seed {SEED}, head l2={L2:g}, dev set of {N_DEV:,} "
        f"gold items; seconds: one run per estimator (training, self and dev influence, top-1 "
        f"evidence) gives both of its rows; {machine()}. "
        "Reproduce: `python -m bench.detection`.",
    )
    with figure(
        "detection",
        "Detection curve: 10% flipped labels",
        xlabel="share of training items inspected",
        ylabel="share of flipped labels found",
        xlim=(0, 0.4),
    ) as ax:
        x = np.arange(1, N_TRAIN + 1) / N_TRAIN
        for title, curve in curves.items():
            ax.plot(x, curve, label=title)
        ax.plot([0, NOISE, 1], [0, 1, 1], "k:", label="perfect")


if __name__ == "__main__":
    main()
