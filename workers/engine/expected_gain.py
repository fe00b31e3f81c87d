"""Influence on gold dev re-weighted into the expected gain of re-annotating each item.

For a softmax head, an item's removal gradient is ``(p - e_y) x``, the served model's p-weighted
mix of flipping its label to each other class, so its harm to the dev loss (``-dev_influence``)
is ``p_served(label wrong)`` times the dev-loss drop of correcting it. Under patterned silver
noise the served model has learned the pattern and is confident in exactly the labels that are
wrong in it, so that factor undercounts them. A head trained on the gold rows only (dev plus
gold training items) never saw the pattern: swapping in its belief that the label is wrong
gives ``harm x p_gold(wrong) / p_served(wrong)``, the expected gain of re-annotating the item
(exact for two classes; for more, the served model's mix over the other classes is kept).

What it buys, measured (``bench/triage_default.py``): the share of the all-silver to all-gold
gap that re-annotating 5% recovers rose on the design splits at all three sizes and, on fresh
splits, by 2-4 points; what it costs (``bench/noise_check.py``): it serves impact over certainty,
so the share of wrong labels among the first 10% falls by 1-2 points.
"""

from __future__ import annotations

import numpy as np

from .head import fit_logistic_head

WRONG_FLOOR = 1e-12
"""Smallest p_served(wrong) divided by: where the served model is certain of a label, its harm
is ~0 too, and the ratio stays finite."""


def expected_gain(
    harm: np.ndarray, y: np.ndarray, served_probs: np.ndarray, gold_probs: np.ndarray
) -> np.ndarray:
    """(n,) ``harm x p_gold(y wrong) / p_served(y wrong)`` for labels y (n,) and both models'
    class probabilities (n, C) on the items."""
    rows = np.arange(len(y))
    wrong_served = np.clip(1.0 - served_probs[rows, y], WRONG_FLOOR, None)
    return harm * (1.0 - gold_probs[rows, y]) / wrong_served


def gold_head_probs(
    X: np.ndarray,
    X_gold: np.ndarray,
    y_gold: np.ndarray,
    n_classes: int,
    *,
    l2: float,
    device: str | None = None,
) -> np.ndarray | None:
    """(n, C) probabilities on X of a head trained on the gold rows only; None where the gold
    rows miss a class (a head that never saw a class cannot judge labels of it)."""
    if len(np.unique(y_gold)) < n_classes:
        return None
    head = fit_logistic_head(X_gold, y_gold, n_classes, l2=l2, device=device)
    return head.predict_proba(X)
