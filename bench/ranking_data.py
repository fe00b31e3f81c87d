"""The MSLR sample (app/demo_data) for the ranking benchmarks, and injected grade errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_svmlight_file

from bench.common import BENCH_DIR

DATA = BENCH_DIR.parent / "app" / "demo_data"


@dataclass(frozen=True)
class Judged:
    features: np.ndarray  # (N, 136)
    grades: np.ndarray  # (N,) int 0-4
    qids: np.ndarray  # (N,)

    def queries(self, picked: np.ndarray) -> Judged:
        keep = np.isin(self.qids, picked)
        return Judged(self.features[keep], self.grades[keep], self.qids[keep])


def load(split: str) -> Judged:
    """``train`` or ``test``: 5,000 judgments of 43 queries each."""
    X, y, q = load_svmlight_file(DATA / f"mslr_sample_{split}.svmlight.gz", query_id=True)
    return Judged(X.toarray(), y.astype(np.int64), q)


def flip_grades(grades: np.ndarray, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Replace ``rate`` of the grades: a relevant one (1-4) by 0, a 0 by 1 or 2 (uniform), as
    a judge who marks a relevant document irrelevant or an irrelevant one relevant. Returns
    the noisy grades and the flipped rows."""
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(len(grades), round(rate * len(grades)), replace=False))
    noisy = grades.copy()
    noisy[flipped] = np.where(grades[flipped] > 0, 0, rng.integers(1, 3, len(flipped)))
    return noisy, flipped
