"""Shared fixtures for the engine tests: real data, the bundled encoder, cached embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workers.engine.embeddings import cached_embeddings, default_encoder_path
from workers.engine.finetune import FineTunedClassifier, fit_finetuned_classifier
from workers.engine.finetuned_cleanlab import FoldFineTuning

ROOT = Path(__file__).resolve().parents[2]
DEMO_CSV = ROOT / "app" / "demo_data" / "rotten_tomatoes_silver.csv.gz"
LABELS = {"rotten": 0, "fresh": 1}


@pytest.fixture(scope="session")
def encoder_path() -> str:
    return default_encoder_path()


@pytest.fixture(scope="session")
def demo_frame() -> pd.DataFrame:
    return pd.read_csv(DEMO_CSV, keep_default_na=False)


@pytest.fixture(scope="session")
def real_subset(demo_frame, encoder_path, tmp_path_factory) -> dict[str, np.ndarray]:
    """300 silver-labelled train rows and 200 gold-labelled dev rows, embedded once."""
    perm = np.random.default_rng(0).permutation(len(demo_frame))
    train, dev = perm[:300], perm[300:500]
    rows = demo_frame.iloc[np.concatenate([train, dev])]
    emb = cached_embeddings(
        rows.text.tolist(), encoder_path, tmp_path_factory.mktemp("emb"), batch_size=64
    )
    return {
        "X_train": emb[:300],
        "y_train": rows.silver_label.iloc[:300].map(LABELS).to_numpy(),
        "X_dev": emb[300:],
        "y_dev": rows.label.iloc[300:].map(LABELS).to_numpy(),
    }


def silver_texts(frame: pd.DataFrame, seed: int, n: int, n_gold: int) -> dict:
    """``n`` demo texts with their silver labels and ``n_gold`` others with their gold labels,
    drawn at random by ``seed``: small sets for the fine-tuning tests."""
    order = np.random.default_rng(seed).permutation(len(frame))
    rows, gold = frame.iloc[order[:n]], frame.iloc[order[n : n + n_gold]]
    return {
        "texts": rows.text.tolist(),
        "y": rows.silver_label.map(LABELS).to_numpy(),
        "gold": (gold.text.tolist(), gold.label.map(LABELS).to_numpy()),
    }


def fit_directly(
    config: FoldFineTuning, texts, y, encoder_path: str, *, l2: float, seed: int
) -> FineTunedClassifier:
    """The two-class model one fine-tuning run with ``config``'s settings makes (every
    transformer layer and the head, on the CPU), fitted here without the code under test."""
    return fit_finetuned_classifier(
        list(texts),
        np.asarray(y),
        2,
        encoder_path=encoder_path,
        train_layers="all",
        epochs=config.epochs,
        lr=config.lr,
        batch_size=config.batch_size,
        max_length=config.max_length,
        l2=l2,
        seed=seed,
        device="cpu",
    )
