"""Influence on a fine-tuned encoder's head, where the noise check serves influence.

The fine-tuned path (``bench.finetuned_cleanlab``) fine-tunes the encoder only for cleanlab's
ranking; where the check calls the noise patterned it serves influence on the gold dev set over
the frozen sentence vectors. Issue 18 names the other half: influence on the fine-tuned model.
This measures it on the noise the check serves influence for (the debates' confusable-class
flips, 25% of each class relabelled as its most confused class): fine-tune the encoder once on
all training items and their silver labels (the fold runs' settings: every layer, 3 epochs,
learning rate 5e-5), take the exact head's influence on the gold dev loss over the fine-tuned
sentence vectors, gain-weighted as the default serves it, and compare with the frozen vectors'
ranking and with the two ranks averaged. Seeds 11 and 12 were looked at first (design); 40-42
are the noise check's fresh seeds. One fine-tuning run per case (a fifth of the fold runs'
cost); its CPU seconds per 1,000 items are in the table.

    python -m bench.finetuned_influence  # ~10 min; writes bench/results/finetuned_influence.md
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from app.core.config import Settings
from bench.common import CACHE, L2, machine, split, write_table
from bench.finetuned_cleanlab import CONFIG, N_DEV, N_TRAIN
from bench.noise_check import DEBATES, confusable_flips, debates, found, influence_rankings

DESIGN, FRESH = (11, 12), (40, 41, 42)


def finetuned_vectors(
    texts: np.ndarray, y: np.ndarray, dev_texts: np.ndarray, k: int, seed: int, key: str
) -> tuple[np.ndarray, np.ndarray, float]:
    """Training and dev sentence vectors of the encoder fine-tuned on (texts, y), and the
    seconds the fine-tuning took; cached under ``key`` and the configuration."""
    c = CONFIG
    path = CACHE / f"finetuned_vectors_{key}_{c.epochs}_{c.lr:g}_{c.max_length}.npz"
    if not path.exists():
        start = time.perf_counter()
        model = c.fit(texts, y, k, l2=L2, seed=seed)
        seconds = time.perf_counter() - start
        train_vectors = model.head_inputs_and_logits(list(texts))[0].double().cpu().numpy()
        dev_vectors = model.head_inputs_and_logits(list(dev_texts))[0].double().cpu().numpy()
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(path, train=train_vectors, dev=dev_vectors, seconds=seconds)
    saved = np.load(path)
    return saved["train"], saved["dev"], float(saved["seconds"])


def main() -> None:
    settings = Settings()
    texts_all = pd.read_csv(DEBATES).text.to_numpy()
    rows, seconds = [], []
    for column in ("party", "speaker"):
        X_all, gold_all, k = debates(column)
        for label, seeds in (("design", DESIGN), ("fresh", FRESH)):
            found_rows = []
            for seed in seeds:
                parts = split(len(gold_all), {"train": N_TRAIN, "dev": N_DEV}, seed=seed)
                train, dev = parts["train"], parts["dev"]
                X, gold, X_dev, y_dev = X_all[train], gold_all[train], X_all[dev], gold_all[dev]
                y = confusable_flips(X, gold, k, np.random.default_rng(seed))
                wrong = y != gold
                F, F_dev, took = finetuned_vectors(
                    texts_all[train], y, texts_all[dev], k, seed, f"{column}_confusable_{seed}"
                )
                seconds.append(took)
                frozen = influence_rankings(X, y, k, X_dev, y_dev, settings)[1]
                tuned = influence_rankings(F, y, k, F_dev, y_dev, settings)[1]
                both = rankdata(frozen) + rankdata(tuned)
                found_rows.append([found(frozen, wrong), found(tuned, wrong), found(both, wrong)])
                print(column, seed, found_rows[-1], took, flush=True)
            v = np.asarray(found_rows)
            rows.append(
                [
                    f"debates: {column}",
                    f"{label} ({', '.join(map(str, seeds))})",
                    v[:, 0].mean(),
                    v[:, 1].mean(),
                    v[:, 2].mean(),
                    ", ".join(f"{b - a:+.3f}" for a, b in zip(v[:, 0], v[:, 2], strict=True)),
                ]
            )
    per_1000 = np.median(seconds) / N_TRAIN * 1000
    write_table(
        "finetuned_influence",
        "Influence on a fine-tuned encoder's head, on confusable-class flips",
        [
            "data set",
            "seeds",
            "influence on dev, frozen vectors: found at 10%",
            "fine-tuned vectors",
            "ranks of both averaged",
            "averaged - frozen, per seed",
        ],
        rows,
        f"Mean share of the wrong labels among the top 10% of each ranking; {N_TRAIN} training "
        f"turns with 25% of each class relabelled as its most confused class, {N_DEV} gold dev "
        "turns. Each ranking: the exact head's influence on the gold dev loss, gain-weighted as "
        "the default serves it (`ASSAY_GAIN_WEIGHTING`), over the frozen sentence vectors or "
        "over those of the encoder fine-tuned once on the training turns and their silver "
        f"labels (every layer, {CONFIG.epochs} epochs, learning rate {CONFIG.lr:g}); averaged: "
        "the mean of the two rankings' ranks. CPU s per 1,000 training items for the one "
        f"fine-tuning run: median {per_1000:.0f}. {machine()}. Reproduce: "
        "`python -m bench.finetuned_influence`.",
    )


if __name__ == "__main__":
    main()
