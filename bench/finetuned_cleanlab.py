"""The fine-tuned path: cleanlab on cross-validated fine-tuning of the encoder, and the default
that serves it where the noise check finds the errors random.

On labels flipped uniformly at random every ranking over the frozen sentence vectors lands near
cleanlab, since the head on those vectors is the limit. Here the encoder itself is fine-tuned
(every transformer layer and the head, ``workers.engine.finetuned_cleanlab``) in 5 folds, each
fold's run trained on the other folds and every gold dev item, and cleanlab ranks by the out-of-
fold probabilities, beside cleanlab on the frozen vectors in the same run. The default with
fine-tuning on (``ASSAY_FINETUNE``) is the ``noise_check`` policy with that ranking in
cleanlab's place: influence on the gold dev set where the check (on the frozen vectors) calls
the noise patterned, rank-averaged with the disbelief of an encoder fine-tuned on the gold dev
rows alone (``workers.engine.gold_finetuned``: chosen on seeds 11 and 12 of every patterned
case, its weight on seeds 11-14), else cleanlab on the fine-tuned encoder. The fine-tuning
settings (every layer, 3 epochs, learning rate 5e-5) were chosen on seeds 11 and 12 of the
debates' uniform noise; this reports seeds 40-42 (SEEDS), the noise check's fresh seeds, on the
data sets, splits and noises of ``bench.noise_check``: the 2016 debates (party, 3 classes;
speaker, 9 classes; 800 training turns, 300 gold dev) and Rotten Tomatoes (4,000 training
snippets, 600 gold dev, with its VADER silver labels besides). The fold runs are made, as in the
product, only where the check does not call the noise patterned. Out-of-fold probabilities and
their timings are cached in bench/.cache; each row measured is kept in
bench/results/finetuned_cleanlab.json, so ``--data``, ``--noises`` and ``--seeds`` remeasure a
part (hours of fold runs on 2 cores for the whole) and the table shows every row kept.

    python -m bench.finetuned_cleanlab --data rt --noises uniform  # one row, table in results/
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from cleanlab.rank import get_label_quality_scores

from app.core.config import Settings
from bench.common import CACHE, L2, RESULTS, load_corpus, machine, split, write_table
from bench.noise_check import (
    DEBATES,
    confusable_flips,
    debates,
    found,
    influence_rankings,
    uniform_flips,
)
from workers.engine.baselines import CLEANLAB_METHOD, cleanlab_scores_with_info
from workers.engine.choice import check_noise
from workers.engine.finetuned_cleanlab import FoldFineTuning, finetuned_cleanlab
from workers.engine.gold_finetuned import gold_finetuned_disbelief, rank_average

SEEDS = (40, 41, 42)
CONFIG = FoldFineTuning()
ROWS = RESULTS / "finetuned_cleanlab.json"
NOISES = {
    "uniform": "uniform 10%",
    "confusable": "confusable 25%",
    "silver": "silver (lexicon rule)",
}


@dataclass(frozen=True)
class DataSet:
    """A benchmark data set: all its items' frozen vectors, gold labels, texts and (where it
    has them) silver labels, and the sizes of the training and gold dev splits."""

    name: str
    X: np.ndarray
    gold: np.ndarray
    k: int
    texts: np.ndarray
    silver: np.ndarray | None
    n_train: int
    n_dev: int


def data_set(key: str) -> DataSet:
    """``party`` or ``speaker`` (the 2016 debates: 800 training turns, 300 gold dev) or ``rt``
    (Rotten Tomatoes: 4,000 training snippets, 600 gold dev, with VADER silver labels)."""
    if key == "rt":
        corpus = load_corpus()
        texts = np.asarray(corpus.texts, dtype=object)
        return DataSet("Rotten Tomatoes", corpus.X, corpus.gold, 2, texts, corpus.silver, 4000, 600)
    X, gold, k = debates(key)
    texts = pd.read_csv(DEBATES).text.to_numpy()
    return DataSet(f"debates: {key}", X, gold, k, texts, None, 800, 300)


def noisy_labels(data: DataSet, noise: str, train: np.ndarray, seed: int) -> np.ndarray | None:
    """The training split's labels under ``noise``; None where the data set has no such noise
    (silver labels exist only for Rotten Tomatoes)."""
    if noise == "silver":
        return None if data.silver is None else data.silver[train]
    flips = uniform_flips if noise == "uniform" else confusable_flips
    return flips(data.X[train], data.gold[train], data.k, np.random.default_rng(seed))


def out_of_fold(
    texts: np.ndarray,
    y: np.ndarray,
    k: int,
    seed: int,
    key: str,
    gold: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, float]:
    """Fine-tuned out-of-fold probabilities, the gold dev rows joining every fold's training,
    and the seconds they took; cached under ``key`` and the configuration."""
    c = CONFIG
    path = CACHE / f"finetuned_oof_gold_{key}_{c.folds}x{c.epochs}_{c.lr:g}_{c.max_length}.npy"
    timing = path.with_suffix(".seconds")
    if path.exists() and timing.exists():
        return np.load(path), float(timing.read_text())
    start = time.perf_counter()
    probs = finetuned_cleanlab(texts, y, k, config=CONFIG, l2=L2, seed=seed, gold=gold).pred_probs
    seconds = time.perf_counter() - start
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, probs)
    timing.write_text(f"{seconds!r}")
    return probs, seconds


def measured_row(data: DataSet, key: str, noise: str, seeds: list[int]) -> dict | None:
    """One table row: every ranking's share found on each seed, the fold runs made where the
    check does not call the noise patterned (as in the product), their CPU seconds."""
    settings = Settings()
    found_rows, tuned_rows, per_item_epoch = [], [], []
    for seed in seeds:
        parts = split(len(data.gold), {"train": data.n_train, "dev": data.n_dev}, seed=seed)
        train, dev = parts["train"], parts["dev"]
        y = noisy_labels(data, noise, train, seed)
        if y is None:
            return None
        X, gold, X_dev, y_dev = data.X[train], data.gold[train], data.X[dev], data.gold[dev]
        wrong = y != gold
        frozen = cleanlab_scores_with_info(X, y, data.k, seed=seed)
        check = check_noise(
            X,
            y,
            data.k,
            X_dev,
            y_dev,
            frozen,
            l2=L2,
            share=settings.noise_check_share,
            margin=settings.noise_check_margin,
            seed=seed,
        )
        _, served = influence_rankings(X, y, data.k, X_dev, y_dev, settings)
        default_tuned = served
        gold_dev = (data.texts[dev], y_dev)
        enough_gold = np.bincount(y_dev, minlength=data.k).min()
        if check.patterned and enough_gold >= settings.gain_weighting_min_gold_per_class:
            disbelief = gold_finetuned_disbelief(
                data.texts[train], y, gold_dev, data.k, config=CONFIG, l2=L2, seed=seed
            )
            w = settings.gold_finetuned_weight
            default_tuned = rank_average(served, disbelief, weights=(1.0 - w, w))
        if not check.patterned:  # the fold runs are made only where they are served
            probs, took = out_of_fold(
                data.texts[train], y, data.k, seed, f"{key}_{noise}_{seed}", gold_dev
            )
            per_item_epoch.append(took / CONFIG.item_epochs(len(y), len(y_dev)) * 1000)
            default_tuned = 1.0 - get_label_quality_scores(y, probs, method=CLEANLAB_METHOD)
            tuned_rows.append(
                [found(default_tuned, wrong), float((probs.argmax(1) == gold).mean())]
            )
        found_rows.append(
            [
                found(frozen.suspicion, wrong),
                found(served if check.patterned else frozen.suspicion, wrong),
                found(default_tuned, wrong),
                float(check.patterned),
                float((frozen.pred_probs.argmax(1) == gold).mean()),
            ]
        )
        print(data.name, noise, seed, f"z={check.z:+.2f}", found_rows[-1], flush=True)
    v = np.asarray(found_rows)
    t = np.asarray(tuned_rows).reshape(-1, 2)
    gain = v[:, 2] - v[:, 0]
    return {
        "data set": data.name,
        "noise": NOISES[noise],
        "seeds": ", ".join(map(str, seeds)),
        "sizes": f"{data.n_train} / {data.n_dev}",
        "cleanlab": v[:, 0].mean(),
        "finetuned": f"{t[:, 0].mean():.3f} ({len(t)})" if len(t) else "not run",
        "default frozen": v[:, 1].mean(),
        "default finetuned": v[:, 2].mean(),
        "gain": gain.mean(),
        "per seed": ", ".join(f"{g:+.3f}" for g in gain),
        "patterned": f"{int(v[:, 3].sum())} of {len(v)}",
        "accuracy frozen": v[:, 4].mean(),
        "accuracy finetuned": f"{t[:, 1].mean():.3f}" if len(t) else "not run",
        "cpu": f"{np.median(per_item_epoch):.1f}" if per_item_epoch else "none made",
        "machine": machine(),
    }


HEADER = {
    "data set": "data set",
    "noise": "noise",
    "seeds": "seeds",
    "sizes": "training / gold dev",
    "cleanlab": "cleanlab, frozen vectors: found at 10%",
    "finetuned": "cleanlab, fine-tuned with gold dev rows (seeds run)",
    "default frozen": "default (noise_check), frozen",
    "default finetuned": "default, fine-tuned path",
    "gain": "fine-tuned path - cleanlab",
    "per seed": "per seed",
    "patterned": "check called patterned",
    "accuracy frozen": "out-of-fold accuracy on gold, frozen",
    "accuracy finetuned": "fine-tuned",
    "cpu": "fold runs: CPU s per 1,000 item-epochs",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=["party", "speaker", "rt"])
    parser.add_argument("--noises", nargs="+", default=list(NOISES))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    args = parser.parse_args(argv)
    rows = json.loads(ROWS.read_text()) if ROWS.exists() else {}
    for key in args.data:
        data = data_set(key)
        for noise in args.noises:  # uniform first: where the fold runs are served
            row = measured_row(data, key, noise, args.seeds)
            if row is not None:
                rows[f"{data.name} / {row['noise']}"] = row
    ROWS.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    write_table(
        "finetuned_cleanlab",
        "The fine-tuned path: cleanlab on a fine-tuned encoder, and the default serving it",
        list(HEADER.values()),
        [[rows[name][field] for field in HEADER] for name in sorted(rows)],
        "Mean over the seeds in each row (fresh: the fine-tuning settings were chosen on seeds "
        "11 and 12 of the debates, the gold dev rows' joining on the frozen vectors' seeds 11, "
        "12, 20 and 21); uniform: 10% of labels flipped to another class at random; "
        "confusable: 25% of each class relabelled as the class it is most confused with; "
        "silver: the VADER lexicon rule's labels. Share of the wrong labels among the top 10% "
        "of each ranking. Fine-tuned: every transformer layer and the head, "
        f"{CONFIG.epochs} epochs, learning rate {CONFIG.lr:g}, {CONFIG.folds} folds, each "
        f"trained on the other folds and every gold dev item, texts cut at {CONFIG.max_length} "
        "tokens; cleanlab's label quality on the out-of-fold probabilities; made, as in the "
        "product, only where the check does not call the noise patterned (seeds run: in "
        "brackets). Default, fine-tuned path: influence on the gold dev set where the noise "
        "check calls the noise patterned, its ranks averaged with those of an encoder "
        "fine-tuned on the gold dev rows alone (by its disbelief in each label; one run, the "
        f"same settings, no folds), weighted {Settings().gold_finetuned_weight:g} to the latter "
        "(`ASSAY_GOLD_FINETUNED_WEIGHT`, chosen on seeds 11-14), else cleanlab on the "
        "fine-tuned encoder (what "
        "`ASSAY_FINETUNE=on` serves). CPU seconds per 1,000 item-epochs: the median over the "
        "seeds' fold runs, (training items x (folds - 1) + gold dev items x folds) x epochs "
        "item-epochs each (`ASSAY_FINETUNE_CPU_S_PER_1000_ITEM_EPOCHS`); runs on a busy or slow "
        "day take longer. Each row is kept in bench/results/finetuned_cleanlab.json with the "
        "machine it ran on; every row here: "
        f"{'; '.join(sorted({row['machine'] for row in rows.values()}))}. Reproduce a row: "
        "`python -m bench.finetuned_cleanlab --data party|speaker|rt --noises "
        "uniform|confusable|silver` (the whole table: no arguments; hours on 2 cores).",
    )


if __name__ == "__main__":
    main()
