"""The bundled survival data sets (app/demo_data) as design matrices, for the Cox/VIF tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from workers.engine.covariates import fit_covariates

DATA = Path(__file__).resolve().parents[2] / "app" / "demo_data"
OUTCOMES = {"rossi": ("week", "arrest"), "gbsg2": ("time", "cens")}


def load(name: str, rows: slice = slice(None)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(standardised covariates, durations, events) of the data set's ``rows``."""
    frame = pd.read_csv(DATA / f"{name}.csv").iloc[rows].reset_index(drop=True)
    duration, event = OUTCOMES[name]
    covariates = [c for c in frame.columns if c not in (duration, event)]
    x, _, _ = fit_covariates(frame, covariates)
    return x, frame[duration].to_numpy(float), frame[event].to_numpy(float)


def untie(duration: np.ndarray, seed: int = 0) -> np.ndarray:
    """Tie-free durations (a jitter smaller than the data's time unit)."""
    return duration + np.random.default_rng(seed).uniform(0.0, 0.5, len(duration))
