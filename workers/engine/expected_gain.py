"""Influence on gold dev re-weighted into the expected gain of re-annotating each item.

For a softmax head, an item's removal gradient is ``(p - e_y) x`` with p the trained head's
probabilities (influence is taken at the trained parameters, also where the served head's
biases are re-fitted on dev): a p-weighted mix of flipping its label to each other class, so
its harm to the dev loss (``-dev_influence``) is ``p_trained(label wrong)`` times the dev-loss
drop of correcting it. Under patterned silver noise the trained head has learned the pattern
and is confident in exactly the labels that are wrong in it, so that factor undercounts them.
A head trained on the gold rows only (dev, plus gold training items where they are influence
targets) never saw the pattern: swapping in its belief that the label is wrong gives ``harm x
p_gold(wrong) / p_trained(wrong)``, the expected gain of re-annotating the item (first order
and exact in the mix for two classes; for more, the trained head's mix over the other classes
is kept).

What it buys, measured (``bench/triage_default.py``): more of the all-silver to all-gold gap
recovered by re-annotating 5%, on the design splits and the fresh ones; what it costs
(``bench/noise_check.py``): it serves impact over certainty, so the share of wrong labels among
the first 10% falls by about 2 points where the noise is patterned.
"""

from __future__ import annotations

import numpy as np

from .head import fit_logistic_head

WRONG_FLOOR = 1e-12
"""Smallest p_trained(wrong) divided by: where the trained head is certain of a label, its
harm is ~0 too, and the ratio stays finite."""


def expected_gain(
    harm: np.ndarray, y: np.ndarray, trained_probs: np.ndarray, gold_probs: np.ndarray
) -> np.ndarray:
    """(n,) ``harm x p_gold(y wrong) / p_trained(y wrong)`` for labels y (n,), the class
    probabilities (n, C) of the head whose removal gradients made ``harm`` (as trained, before
    any bias re-fit) and of the gold head."""
    rows = np.arange(len(y))
    wrong_trained = np.clip(1.0 - trained_probs[rows, y], WRONG_FLOOR, None)
    return harm * (1.0 - gold_probs[rows, y]) / wrong_trained


def gold_head_probs(
    X: np.ndarray,
    X_gold: np.ndarray,
    y_gold: np.ndarray,
    n_classes: int,
    *,
    l2: float,
    min_per_class: int = 1,
    device: str | None = None,
) -> np.ndarray | None:
    """(n, C) probabilities on X of a head trained on the gold rows only; None where a class
    has fewer than ``min_per_class`` gold rows (a head that saw a class a handful of times, or
    never, cannot judge labels of it: on few points it is near certain of everything)."""
    if np.bincount(np.asarray(y_gold, dtype=np.int64), minlength=n_classes).min() < min_per_class:
        return None
    head = fit_logistic_head(X_gold, y_gold, n_classes, l2=l2, device=device)
    return head.predict_proba(X)
