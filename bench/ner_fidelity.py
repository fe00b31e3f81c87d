"""Segment influence against retraining on a small real subset of the NER benchmark.

Per data set: 150 corrupted training sentences (report seed 1 of ``bench.ner_detection``) and
its gold dev set. Single segments (the 6 with the largest |dev influence| and 6 at random) and
same-string same-label groups of at least 2 segments (up to 8 at random) are removed one at a
time by retraining the head without their tokens; the predicted change of the dev loss (their
dev influence, summed over a group) is compared with the actual one.

    python -m bench.ner_fidelity      # writes bench/results/ner_detection_fidelity.md
"""

from __future__ import annotations

import numpy as np

from bench.common import machine, write_table
from bench.ner_corruption import inject
from bench.ner_data import TAG_NAMES, TYPES, load
from bench.ner_detection import L2, SIZES
from workers.engine.segment_influence import SegmentInfluence
from workers.engine.systematic import surface_groups
from workers.engine.tagging import TaggedCorpus, candidate_segments, tag_ids

N_TRAIN, SEED, N_SINGLE, N_GROUPS = 150, 1, 12, 8


def fidelity(name: str) -> list[list]:
    corpus = load(name)
    order = np.random.default_rng(SEED).permutation(len(corpus.words))
    n_dev = SIZES[name][0]
    dev_i, train_i = order[:n_dev], order[n_dev : n_dev + N_TRAIN]
    words = [corpus.words[i] for i in train_i]
    noisy, _ = inject(words, [corpus.tags[i] for i in train_i], TYPES, seed=SEED, min_count=2)
    train = TaggedCorpus([corpus.vectors[i] for i in train_i], tag_ids(noisy, TAG_NAMES))
    dev_tags = tag_ids([corpus.tags[i] for i in dev_i], TAG_NAMES)
    dev = TaggedCorpus([corpus.vectors[i] for i in dev_i], dev_tags)
    inf = SegmentInfluence.fit(train, len(TAG_NAMES), l2=L2)
    segments = candidate_segments(noisy, noisy)
    dev_inf = inf.dev_influence(segments, dev)
    rng = np.random.default_rng(SEED)
    strongest = list(np.argsort(-np.abs(dev_inf))[: N_SINGLE // 2])
    rest = [k for k in range(len(segments)) if k not in strongest]
    singles = [[k] for k in strongest + list(rng.choice(rest, N_SINGLE // 2, replace=False))]
    groups = [m for m in surface_groups(segments, words).values() if len(m) >= 2]
    picked = [groups[j] for j in rng.choice(len(groups), min(N_GROUPS, len(groups)), False)]
    base = inf.head.token_losses(dev).sum()
    rows = []
    for what, sets in (("single segments", singles), ("same-string groups", picked)):
        predicted = [dev_inf[m].sum() for m in sets]
        actual = [
            inf.retrain_without([segments[k] for k in m]).token_losses(dev).sum() - base
            for m in sets
        ]
        same_sign = np.mean(np.sign(predicted) == np.sign(actual))
        rows.append([name, what, len(sets), float(np.corrcoef(predicted, actual)[0, 1]), same_sign])
    return rows


def main() -> None:
    rows = [row for name in SIZES for row in fidelity(name)]
    write_table(
        "ner_detection_fidelity",
        "Segment influence on the gold dev loss against retraining",
        ["data set", "removed", "removals", "Pearson", "same sign"],
        rows,
        f"{N_TRAIN} corrupted training sentences (seed {SEED}), the benchmark's gold dev set, "
        f"head l2={L2}; a group's prediction is the sum of its members' influences (first "
        f"order). {machine()}. Reproduce: `python -m bench.ner_fidelity`.",
    )


if __name__ == "__main__":
    main()
