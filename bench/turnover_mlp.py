"""Turn-over dropout in the paper's setting: masks on a wide hidden layer, evaluated three ways.

``workers/engine/turnover_mlp.py`` trains a one-hidden-layer head over the frozen sentence
vectors with turn-over dropout on its HIDDEN units (Kobayashi et al. 2020). On Rotten Tomatoes
with 10% of the training labels flipped uniformly at random (seeds SEEDS; 4,000 training
snippets, 600 gold dev, 2,000 test):

1. detection: the share of flipped labels among the top 5/10/20% of its self-influence and of
   its harm to the gold dev loss, beside the same model's training loss, tuned cleanlab and
   random;
2. the paper's data cleansing: remove the training items it calls most harmful to the dev
   loss (and, separately, its highest self-influence), retrain the same way, and compare test
   accuracy with removing as many at random (mean of RANDOM_DRAWS draws) and by cleanlab;
3. fidelity: the predicted change of the dev loss against retraining without the item (the 10
   items of largest predicted effect and 10 at random), with the dev loss's spread over
   retraining seeds beside it (minibatch training moves between seeds; a change smaller than
   that spread cannot be told from it).

    python -m bench.turnover_mlp      # writes bench/results/turnover_mlp_*.md
"""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr

from bench.common import load_corpus, machine, split, write_table
from workers.engine.baselines import cleanlab_scores
from workers.engine.turnover_mlp import TurnoverMLP, fit_turnover_mlp

SEEDS = (0, 1)
SIZES = {"train": 4000, "dev": 600, "test": 2000}
FLIPPED, SHARES, INSPECTED = 0.10, (0.01, 0.05, 0.10), (0.05, 0.10, 0.20)
RANDOM_DRAWS, FIDELITY_STRONGEST, FIDELITY_RANDOM, SPREAD_SEEDS = 3, 10, 10, 3
CLEANSERS = (
    "turn-over dropout: harm to the dev loss",
    "turn-over dropout: self-influence",
    "cleanlab (tuned, cross-validated)",
)
SETUP = "hidden layer of 512 ReLU units, 20 epochs of Adam (lr 1e-3, weight decay 1e-4, batch 64)"


def fit(X: np.ndarray, y: np.ndarray, ids: np.ndarray, seed: int) -> TurnoverMLP:
    return fit_turnover_mlp(X, y, 2, ids, seed=seed)


def dev_loss(model: TurnoverMLP, X: np.ndarray, y: np.ndarray) -> float:
    p = model.predict_proba(X)[np.arange(len(y)), y]
    return float(-np.log(np.clip(p, 1e-12, None)).mean())


def found(suspicion: np.ndarray, wrong: np.ndarray, share: float) -> float:
    top = np.argsort(-suspicion, kind="stable")[: round(share * len(wrong))]
    return float(wrong[top].sum() / wrong.sum())


def run(seed: int) -> tuple[dict, dict, list]:
    corpus = load_corpus()
    parts = split(len(corpus.gold), SIZES, seed=seed)
    X, gold = corpus.X[parts["train"]], corpus.gold[parts["train"]]
    X_dev, y_dev = corpus.X[parts["dev"]], corpus.gold[parts["dev"]]
    X_test, y_test = corpus.X[parts["test"]], corpus.gold[parts["test"]]
    rng = np.random.default_rng(seed + 1000)
    y = gold.copy()
    picked = rng.choice(len(y), round(FLIPPED * len(y)), replace=False)
    y[picked] = 1 - y[picked]
    wrong = y != gold
    ids = np.arange(len(y))
    model = fit(X, y, ids, seed)
    influence = model.influence(X_dev, y_dev)
    probs = model.predict_proba(X)[np.arange(len(y)), y]
    rankings = {
        "turn-over dropout: harm to the dev loss": -influence,
        "turn-over dropout: self-influence": model.self_influence(X, y),
        "training loss (same model)": -np.log(np.clip(probs, 1e-12, None)),
        "cleanlab (tuned, cross-validated)": cleanlab_scores(X, y, 2, seed=seed),
    }
    detection = {name: [found(s, wrong, q) for q in INSPECTED] for name, s in rankings.items()}
    cleansing: dict[tuple[float, str], float] = {
        (0.0, "none removed"): model.accuracy(X_test, y_test)
    }
    for share in SHARES:
        k = round(share * len(y))

        def accuracy_without(removed: np.ndarray) -> float:
            kept = np.setdiff1d(ids, removed)
            return fit(X[kept], y[kept], kept, seed).accuracy(X_test, y_test)

        for name in CLEANSERS:
            cleansing[(share, name)] = accuracy_without(np.argsort(-rankings[name])[:k])
        draws = [
            accuracy_without(rng.choice(len(y), k, replace=False)) for _ in range(RANDOM_DRAWS)
        ]
        cleansing[(share, "random")] = float(np.mean(draws))
    strongest = np.argsort(-np.abs(influence))[:FIDELITY_STRONGEST]
    others = rng.choice(np.setdiff1d(ids, strongest), FIDELITY_RANDOM, replace=False)
    items = np.concatenate([strongest, others])
    base = dev_loss(model, X_dev, y_dev)
    actual = []
    for i in items:
        kept = np.delete(ids, i)
        actual.append(dev_loss(fit(X[kept], y[kept], kept, seed), X_dev, y_dev) - base)
    spread = [dev_loss(fit(X, y, ids, seed + 100 + s), X_dev, y_dev) for s in range(SPREAD_SEEDS)]
    predicted = influence[items]  # loss without i - loss with i: the predicted change
    fidelity = [
        seed,
        pearsonr(predicted, actual)[0],
        spearmanr(predicted, actual)[0],
        float(np.mean(np.abs(actual))),
        float(np.std([base, *spread], ddof=1)),
        float(np.mean(np.abs(predicted))),
    ]
    return detection, cleansing, fidelity


def main() -> None:
    detections, cleansings, fidelity = [], [], []
    for seed in SEEDS:
        detection, cleansing, row = run(seed)
        print(seed, detection, cleansing, row, flush=True)
        detections.append(detection)
        cleansings.append(cleansing)
        fidelity.append(row)
    note = (
        f"Rotten Tomatoes, 10% of 4,000 training labels flipped uniformly at random, 600 gold "
        f"dev, 2,000 test; mean over seeds {', '.join(map(str, SEEDS))}; {SETUP}, masks on the "
        f"hidden units. {machine()}. Reproduce: `python -m bench.turnover_mlp`."
    )
    names = list(detections[0])
    write_table(
        "turnover_mlp_detection",
        "Turn-over dropout on a hidden layer: flipped labels found",
        ["ranking", *[f"found in top {q:.0%}" for q in INSPECTED]],
        [[n, *np.mean([d[n] for d in detections], axis=0)] for n in names]
        + [["random", *INSPECTED]],
        note,
    )
    keys = list(cleansings[0])
    write_table(
        "turnover_mlp_cleansing",
        "The paper's data cleansing: test accuracy after removing training items and retraining",
        ["removed", "chosen by", "test accuracy"],
        [
            [f"{share:.0%}", name, np.mean([c[(share, name)] for c in cleansings])]
            for share, name in keys
        ],
        note + f" Random: the mean of {RANDOM_DRAWS} draws; every retraining uses the seed of the "
        "model it replaces, the kept items their own masks.",
    )
    write_table(
        "turnover_mlp_fidelity",
        "Turn-over dropout on a hidden layer against retraining without the item",
        [
            "seed",
            "Pearson",
            "Spearman",
            "mean |actual change of dev loss|",
            "dev loss spread over training seeds (std)",
            "mean |predicted change|",
        ],
        fidelity,
        note + f" Items: the {FIDELITY_STRONGEST} of largest predicted effect and "
        f"{FIDELITY_RANDOM} at random; each retrained once without the item at the same seed; "
        f"the spread: the dev loss of the full model at {SPREAD_SEEDS + 1} training seeds.",
    )


if __name__ == "__main__":
    main()
