"""Benchmark 3: InfFeed objective 1, label adjustment from influencers, on held-out test data.

The demo's split with twice its gold training data: 1,000 gold training snippets plus an
8,000-snippet extension, 1,000 gold dev snippets, the remaining 2,752 as test. Two training
sets: the extension with VADER's silver labels (the demo's case) and with gold labels. k, the
weighting and the confidence threshold are chosen on dev only; test macro-F1 is reported before
and after adjustment, for the head served as trained and with its biases re-fitted on dev (the
product's default).

    python -m bench.adjustment       # writes bench/results/adjustment.md and adjustment.png
"""

from __future__ import annotations

import itertools

import numpy as np

from bench.common import L2, Timer, figure, load_corpus, machine, macro_f1, split, write_table
from workers.engine.estimators import ExactHeadInfluence
from workers.engine.suggestions import inffeed_suggestions

SIZES = {"gold": 1000, "extension": 8000, "dev": 1000}


def main() -> None:
    corpus = load_corpus()
    parts = split(len(corpus.gold), SIZES, seed=0)
    train = np.concatenate([parts["gold"], parts["extension"]])
    X, Xd, yd = corpus.X[train], corpus.X[parts["dev"]], corpus.gold[parts["dev"]]
    Xt, yt = corpus.X[parts["rest"]], corpus.gold[parts["rest"]]
    rows = []
    for (title, extension_labels), calibrate in itertools.product(
        (("VADER-silver extension", corpus.silver), ("gold extension", corpus.gold)),
        (False, True),
    ):
        y = np.concatenate([corpus.gold[parts["gold"]], extension_labels[parts["extension"]]])
        with Timer() as timer:
            inf = ExactHeadInfluence.fit(X, y, 2, l2=L2)
            if calibrate:
                inf = inf.calibrated(Xd, yd)
            report = inffeed_suggestions(inf, X, y, Xd, yd, Xt, yt)
        predicted = inf.model.predict_proba(Xt).argmax(axis=1)
        before = macro_f1(yt, predicted)
        cfg = report.config
        rows.append(
            [
                title,
                "re-fitted on dev" if calibrate else "as trained",
                report.dev_f1_before,
                report.dev_f1_after,
                before,
                report.test_f1_after,
                f"{report.test_f1_after - before:+.3f}",
                f"k={cfg.k}, {cfg.weighting}, below {cfg.threshold:.2f}",
                int((report.test.label != predicted).sum()),
                timer.seconds,
            ]
        )
        print(rows[-1], flush=True)
    with figure(
        "adjustment",
        "InfFeed label adjustment on held-out test data",
        ylabel="test macro-F1",
        ylim=(0.4, 0.8),
    ) as ax:
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [r[4] for r in rows], 0.4, label="model")
        ax.bar(x + 0.2, [r[5] for r in rows], 0.4, label="model + InfFeed adjustment")
        ax.set_xticks(x, [f"{r[0]}\nbiases {r[1]}" for r in rows], fontsize=7)
    write_table(
        "adjustment",
        "Label adjustment (InfFeed objective 1): test macro-F1",
        [
            "training labels",
            "head's biases",
            "dev F1",
            "dev F1 adjusted",
            "test F1",
            "test F1 adjusted",
            "gain",
            "chosen on dev",
            "test labels changed",
            "seconds",
        ],
        rows,
        note=f"{len(parts['rest']):,} test snippets, exact head influence (l2={L2:g}); with "
        "the biases re-fitted on dev, dev F1 is that of a model partly fitted on dev; "
        f"{machine()}. Reproduce: `python -m bench.adjustment`.",
    )


if __name__ == "__main__":
    main()
