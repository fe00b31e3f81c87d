"""What every benchmark shares: the bundled data, its embeddings, seeded splits, result files."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from app.cli.demo import DATA_FILE
from workers.engine import cached_embeddings, default_encoder_path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
CACHE = BENCH_DIR / ".cache"
LABELS = ("fresh", "rotten")
L2 = 1e-3


@dataclass
class Corpus:
    """All 12,752 snippets: embeddings, gold labels and VADER silver labels (label indices)."""

    X: np.ndarray
    gold: np.ndarray
    silver: np.ndarray
    texts: list[str]


def load_corpus() -> Corpus:
    frame = pd.read_csv(DATA_FILE, keep_default_na=False)
    index = {label: i for i, label in enumerate(LABELS)}
    texts = frame.text.tolist()
    X = cached_embeddings(texts, default_encoder_path(), CACHE, max_length=128)
    return Corpus(
        X, frame.label.map(index).to_numpy(), frame.silver_label.map(index).to_numpy(), texts
    )


def split(n: int, sizes: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Disjoint index sets of the given sizes from a seeded permutation; 'rest' gets the rest."""
    order = np.random.default_rng(seed).permutation(n)
    out, start = {}, 0
    for name, size in sizes.items():
        out[name] = order[start : start + size]
        start += size
    out["rest"] = order[start:]
    return out


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 2) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro", labels=list(range(n_classes))))


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


class PeakMemory:
    """Highest resident set size above the level at entry, sampled from /proc (Linux)."""

    def __enter__(self):
        import threading

        self._stop = threading.Event()
        self._base = self._peak = _rss_mib()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, _rss_mib())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_mib = max(self._peak, _rss_mib()) - self._base


def _rss_mib() -> float:
    import os

    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def machine() -> str:
    import os

    import torch

    return (
        f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"device {'cuda' if torch.cuda.is_available() else 'cpu'}"
    )


def write_table(name: str, title: str, header: list[str], rows: list[list], note: str = "") -> Path:
    """A Markdown table under bench/results/, which the README includes."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    if note:
        lines += ["", note]
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    print(path.read_text())
    return path


@contextmanager
def figure(name: str, title: str, **axes: object) -> Iterator:
    """A Matplotlib axes (headless backend) saved as bench/results/NAME.png on exit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    yield ax
    ax.set(title=title, **axes)
    ax.legend(fontsize=7)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / f"{name}.png", dpi=110)
    plt.close(fig)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
