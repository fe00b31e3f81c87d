"""Benchmark: finding injected NER errors, segment influence against cleanlab and CrossWeigh.

The English news sentences' silver tags and the Japanese corpus's gold tags are taken as the
truth (types mapped to PER, ORG, LOC, MISC, NUM: ``bench.ner_data``). Per data set and seed, a
gold dev set is drawn from the sentences, and errors of four kinds (``bench.ner_corruption``)
are injected into the training sentences. Every ranking orders the same candidate segments
(labelled spans plus spans only the model predicts). An injected error is found when a segment
among the top rows overlaps the tokens it touched; the rows inspected are a share of the
labelled spans in the corrupted training set, the same number for every method, so a ranking
that lists more candidates gets no larger slice.

Settings (l2, the default ranking's design) were chosen on seed 0 of both data sets; the tables
report the other seeds, never looked at while choosing.

    python -m bench.ner_detection      # writes bench/results/ner_detection*.md and the PNG
    python -m bench.ner_fidelity       # influence against retraining, a small subset
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from bench.common import RESULTS, PeakMemory, figure, machine, write_table
from bench.ner_corruption import KINDS, Injected, inject
from bench.ner_data import TAG_NAMES, TYPES, NerCorpus, load
from workers.engine.crossweigh import crossweigh_scores
from workers.engine.segment_influence import score_segments
from workers.engine.tagging import Segment, TaggedCorpus, bio_spans, tag_ids
from workers.engine.tagging_baselines import (
    cleanlab_segment_scores,
    out_of_fold_marginals,
    random_segment_scores,
)

L2 = 1e-3  # best dev span F1 of 1e-2, 1e-3, 1e-4 on seed 0 of both corpora
SIZES = {"english": (200, 1000), "japanese": (100, 400)}  # (gold dev, training) sentences
CHOICE_SEEDS = (0,)
REPORT_SEEDS = (1, 2)
BUDGETS = (0.05, 0.10, 0.20)
CW_FOLDS, CW_RUNS = 10, 3
METHODS = (
    "Assay default",
    "segment influence, dev",
    "segment influence, self",
    "cleanlab token classification",
    "CrossWeigh",
    "token loss",
    "random",
)


@dataclass
class Run:
    """One data set and seed: the candidates, every method's suspicion, what was injected."""

    segments: list[Segment]
    n_labelled: int
    injected: list[Injected]
    suspicion: dict[str, np.ndarray]
    seconds: dict[str, float]
    peak_mib: float
    n_train: int


def run(corpus: NerCorpus, seed: int) -> Run:
    n_dev, n_train = SIZES[corpus.name]
    order = np.random.default_rng(seed).permutation(len(corpus.words))
    dev_i, train_i = order[:n_dev], order[n_dev : n_dev + n_train]
    words = [corpus.words[i] for i in train_i]
    noisy, injected = inject(words, [corpus.tags[i] for i in train_i], TYPES, seed=seed)
    train = TaggedCorpus([corpus.vectors[i] for i in train_i], tag_ids(noisy, TAG_NAMES))
    dev_tags = tag_ids([corpus.tags[i] for i in dev_i], TAG_NAMES)
    dev = TaggedCorpus([corpus.vectors[i] for i in dev_i], dev_tags)
    seconds = {}
    start = time.perf_counter()
    with PeakMemory() as mem:
        sc = score_segments(
            train,
            TAG_NAMES,
            l2=L2,
            dev=dev,
            words=words,
            dev_words=[corpus.words[i] for i in dev_i],
        )
    seconds["segment influence"] = time.perf_counter() - start
    start = time.perf_counter()
    probs = out_of_fold_marginals(train, len(TAG_NAMES), l2=L2, seed=seed)
    cleanlab = cleanlab_segment_scores(train, sc.segments, probs)
    seconds["cleanlab"] = time.perf_counter() - start
    start = time.perf_counter()
    cw = crossweigh_scores(
        train, words, sc.segments, TAG_NAMES, l2=L2, folds=CW_FOLDS, runs=CW_RUNS, seed=seed
    )
    seconds["CrossWeigh"] = time.perf_counter() - start
    suspicion = dict(
        zip(
            METHODS,
            (
                sc.suspicion,
                -sc.dev_influence,
                sc.self_influence,
                cleanlab,
                cw.suspicion,
                sc.loss,
                random_segment_scores(len(sc.segments), seed),
            ),
            strict=True,
        )
    )
    n_labelled = sum(len(bio_spans(t)) for t in noisy)
    return Run(sc.segments, n_labelled, injected, suspicion, seconds, mem.peak_mib, n_train)


def found(run: Run, method: str, budget: float) -> dict[str, float]:
    """Share of the injected errors of each kind (and all) that a top row overlaps."""
    top = np.argsort(-run.suspicion[method], kind="stable")[: round(budget * run.n_labelled)]
    seen: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for k in top:
        seg = run.segments[k]
        seen[seg.sentence].append((seg.start, seg.end))
    out = {}
    for kind in (*KINDS, "all"):
        errors = [e for e in run.injected if kind in ("all", e.kind)]
        hits = sum(any(a < e.end and e.start < b for a, b in seen[e.sentence]) for e in errors)
        out[kind] = hits / max(1, len(errors))
    return out


def mean_found(runs: list[Run], method: str, budget: float) -> dict[str, float]:
    per = [found(r, method, budget) for r in runs]
    return {k: float(np.mean([p[k] for p in per])) for k in per[0]}


def tables(name: str, runs: list[Run], seeds: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """Write the per-kind and the budget tables of one data set; return the 10% figures."""
    n_err = {k: np.mean([sum(e.kind == k for e in r.injected) for r in runs]) for k in KINDS}
    at10 = {m: mean_found(runs, m, 0.10) for m in METHODS}
    rows = [[m, *(at10[m][k] for k in (*KINDS, "all"))] for m in METHODS]
    rows += [
        [f"{m}, top {b:.0%}", *(mean_found(runs, m, b)[k] for k in (*KINDS, "all"))]
        for b in (0.05, 0.20)
        for m in METHODS
    ]
    sizes = SIZES[name]
    write_table(
        f"ner_detection_{name}",
        f"Injected NER errors found, {name} ({sizes[1]:,} training sentences, {sizes[0]} gold dev)",
        ["ranking (top 10% unless named)", *KINDS, "all"],
        rows,
        f"Share of injected errors whose tokens a top-ranked candidate overlaps; rows inspected "
        f"= the budget times the labelled spans (mean {np.mean([r.n_labelled for r in runs]):,.0f}"
        f"), the same for every ranking. Mean over report seeds {list(seeds)} (settings were "
        f"chosen on seed {list(CHOICE_SEEDS)}, not reported); errors per seed: "
        + ", ".join(f"{k} {v:.0f}" for k, v in n_err.items())
        + f". MEMM head l2={L2}; CrossWeigh {CW_FOLDS} folds x {CW_RUNS} runs; types mapped "
        "to PER, ORG, LOC, MISC, NUM. Reproduce: `python -m bench.ner_detection`.",
    )
    return at10


def cost_table(runs: dict[str, list[Run]]) -> None:
    rows = []
    for name, rs in runs.items():
        per = 1000 / rs[0].n_train
        for what in ("segment influence", "cleanlab", "CrossWeigh"):
            rows.append([name, what, float(np.mean([r.seconds[what] for r in rs])) * per])
        rows.append([name, "segment influence peak MiB", max(r.peak_mib for r in rs) * per])
    write_table(
        "ner_detection_cost",
        "Cost per 1,000 training sentences",
        ["data set", "what", "seconds (or MiB)"],
        rows,
        "Segment influence: fit the head, Hessian, self and dev influence of every candidate, "
        "the default ranking; cleanlab: 5-fold out-of-fold marginals; CrossWeigh: "
        f"{CW_FOLDS} x {CW_RUNS} entity-disjoint fits. Peak memory: resident set above the "
        f"level before scoring. Scaled linearly from the runs' sizes; {machine()}.",
    )


def chart(at10: dict[str, dict[str, dict[str, float]]]) -> None:
    with figure("ner_detection", "Injected NER errors found in the top 10%", ylabel="found") as ax:
        width = 0.8 / len(METHODS)
        groups = [(n, k) for n in at10 for k in ("systematic", "all")]
        x = np.arange(len(groups))
        for j, m in enumerate(METHODS):
            ax.bar(x + j * width, [at10[n][m][k] for n, k in groups], width, label=m)
        ax.set_xticks(x + 0.4 - width / 2, [f"{n}\n{k}" for n, k in groups])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="*", default=list(REPORT_SEEDS))
    seeds = tuple(parser.parse_args().seeds)
    runs, at10 = {}, {}
    for name in SIZES:
        corpus = load(name)
        runs[name] = [run(corpus, s) for s in seeds]
        at10[name] = tables(name, runs[name], seeds)
    cost_table(runs)
    chart(at10)
    combine()


def combine() -> None:
    """bench/results/ner_detection.md: both data sets' tables and the cost, for the README."""
    parts = [f"ner_detection_{n}" for n in (*SIZES, "cost")]
    (RESULTS / "ner_detection.md").write_text(
        "\n".join((RESULTS / f"{p}.md").read_text() for p in parts)
    )


if __name__ == "__main__":
    main()
