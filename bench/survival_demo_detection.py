"""How many of the survival demo's corrupted records each ranking puts first.

The demo's corruption (``app.cli.demo_survival``: 30 of 536 gbsg2 training records, a censored
one made an event or an event dated 3 times later; 150 gold dev records), over five seeds of
the split and the corrupted records; every suspicion ordering the engine offers
(``workers.engine.cox.SurvivalEstimator``) at 5/10/20% of the records inspected, against
random. Run: ``python -m bench.survival_demo_detection`` (about a minute on 2 CPU cores).
"""

from __future__ import annotations

import numpy as np

from app.cli.demo_survival import LABELS, demo_parts
from app.core.config import get_settings
from app.kinds.survival.annotation import duration_of, encode, event_of
from bench.common import machine, write_table
from workers.engine.cox import DEFAULT_ESTIMATOR, Residuals, suspicion_scores
from workers.kinds.survival.pipeline import score_records

SEEDS = range(5)
SHARES = (0.05, 0.10, 0.20)


def _fields_and_labels(rows: list[dict[str, str]]) -> tuple[list, list[str]]:
    duration, event = LABELS
    skip = {"id", duration, event}
    fields = [[[k, v] for k, v in r.items() if k not in skip] for r in rows]
    labels = [encode(duration_of(r[duration]), event_of(r[event])) for r in rows]
    return fields, labels


def main() -> None:
    settings = get_settings()
    found: dict[str, list[list[int]]] = {}
    n_wrong = n_train = 0
    for seed in SEEDS:
        parts, wrong = demo_parts(seed)
        train, dev = parts["silver"], parts["gold_dev"]
        fields, labels = _fields_and_labels(train)
        dev_fields, dev_labels = _fields_and_labels(dev)
        out = score_records(fields, labels, settings, dev_fields=dev_fields, dev_labels=dev_labels)
        s = out.scores
        residuals = Residuals(s.risk, s.expected_events, s.martingale, s.deviance)
        is_wrong = np.array([r["id"] in wrong for r in train])
        n_wrong, n_train = len(wrong), len(train)
        for name, suspicion in suspicion_scores(s.influence, s.self_influence, residuals).items():
            order = np.argsort(-suspicion, kind="stable")
            counts = [int(is_wrong[order[: int(n_train * share)]].sum()) for share in SHARES]
            found.setdefault(str(name), []).append(counts)
    rows = [
        [name, *(float(np.mean([c[k] for c in counts])) for k in range(len(SHARES)))]
        for name, counts in found.items()
    ]
    rows.append(["random", *(n_wrong * share for share in SHARES)])
    write_table(
        "survival_demo_detection",
        f"Survival demo: corrupted records found (of {n_wrong} in {n_train}), mean of "
        f"{len(SEEDS)} seeds",
        ["ranking", *(f"top {share:.0%}" for share in SHARES)],
        rows,
        note=f"`python -m bench.survival_demo_detection`; {machine()}. The default ranking is "
        f"`{DEFAULT_ESTIMATOR}`.",
    )


if __name__ == "__main__":
    main()
