"""A design matrix from a table's covariate columns, fitted on training rows, applied to dev rows.

Numeric columns are standardised with the training mean and the sample standard deviation
(ddof=1): that is what lifelines' CoxPHFitter does internally, so a penalty on our coefficients
is the same penalty as lifelines' on the same data. Non-numeric columns are one-hot encoded with
the training levels (sorted, the first dropped as the reference); a level seen only in dev rows
gets all zeros, i.e. the reference level's prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

Table = pd.DataFrame | Sequence[Mapping[str, object]]


def _frame(table: Table, columns: Sequence[str]) -> pd.DataFrame:
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(list(table))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"covariate columns not in the table: {', '.join(missing)}")
    return frame.loc[:, list(columns)]


def _numeric(values: pd.Series) -> pd.Series | None:
    """The column as floats when every non-blank value parses as a number (CSV cells arrive as
    strings), else None (categorical)."""
    text = values.astype(str).str.strip()
    blank = values.isna() | (text == "")
    parsed = pd.to_numeric(text.where(~blank), errors="coerce")
    if parsed[~blank].isna().any() or bool(blank.all()):
        return None
    return parsed.astype(float)


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    parsed = _numeric(frame[column])
    if parsed is None or parsed.isna().any():
        raise ValueError(f"covariate {column!r} needs a number in every row")
    return parsed.to_numpy()


@dataclass(frozen=True)
class CovariateTransform:
    """The training statistics: per numeric column its mean and standard deviation, per
    categorical column its levels (the first is the dropped reference)."""

    columns: tuple[str, ...]
    means: Mapping[str, float]
    stds: Mapping[str, float]
    levels: Mapping[str, tuple[str, ...]]

    @property
    def names(self) -> list[str]:
        """The design matrix's column names: a numeric column's own name, ``col=level`` for each
        non-reference level of a categorical one."""
        out: list[str] = []
        for c in self.columns:
            if c in self.means:
                out.append(c)
            else:
                out.extend(f"{c}={level}" for level in self.levels[c][1:])
        return out

    def transform(self, table: Table) -> np.ndarray:
        """(rows, len(names)) float64 design matrix with the training statistics."""
        frame = _frame(table, self.columns)
        blocks = []
        for c in self.columns:
            if c in self.means:
                blocks.append(((_numbers(frame, c) - self.means[c]) / self.stds[c])[:, None])
            else:
                values = frame[c].astype(str).str.strip().to_numpy()
                levels = np.array(self.levels[c][1:], dtype=object)
                blocks.append((values[:, None] == levels[None, :]).astype(float))
        if not blocks:
            return np.zeros((len(frame), 0))
        return np.hstack(blocks)


def fit_covariates(
    table: Table, columns: Sequence[str]
) -> tuple[np.ndarray, list[str], CovariateTransform]:
    """Fit the encoding on training rows: (design matrix, column names, transform for dev)."""
    frame = _frame(table, columns)
    means: dict[str, float] = {}
    stds: dict[str, float] = {}
    levels: dict[str, tuple[str, ...]] = {}
    for c in columns:
        parsed = _numeric(frame[c])
        if parsed is None:
            levels[c] = tuple(sorted(set(frame[c].astype(str).str.strip())))
            continue
        values = _numbers(frame, c)
        means[c] = float(values.mean())
        sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        stds[c] = sd if sd > 0 else 1.0  # a constant column stays all zeros
    transform = CovariateTransform(tuple(columns), means, stds, levels)
    return transform.transform(frame), transform.names, transform
