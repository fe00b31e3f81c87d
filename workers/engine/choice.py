"""Which ranking fits the data's noise, decided without any truth about the silver labels.

Influence on a gold dev set is the right ranking when silver labels are wrong in a pattern (a
labelling rule, a confusable class): it finds what the dev set contradicts, where
cross-validated confidence (cleanlab) sees nothing, since the pattern is learnable and the
model agrees with it. It is the wrong one when labels are wrong at random: cleanlab then finds
more. The two cases leave opposite traces. Patterned errors are learnable, so a model agrees
more with the silver labels (out of fold) than the model trained on them agrees with the gold
dev labels; random errors are not, so the silver labels are the harder ones to agree with. The
check costs nothing extra: cleanlab's out-of-fold probabilities and its tuned head are
computed for its ranking anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .baselines import CleanlabResult
from .head import fit_logistic_head


@dataclass(frozen=True)
class NoiseCheck:
    """``silver_agreement``: share of training items whose silver label the out-of-fold head
    predicts; ``gold_agreement``: share of gold dev items whose label the head trained on all
    silver labels predicts (same tuned penalty)."""

    silver_agreement: float
    gold_agreement: float

    @property
    def patterned(self) -> bool:
        """The silver labels are easier to agree with than the gold ones: their errors are
        learnable, and influence on the gold dev set is the ranking to serve."""
        return self.silver_agreement > self.gold_agreement


def check_noise(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    X_dev: np.ndarray,
    y_dev: np.ndarray,
    cleanlab: CleanlabResult,
    *,
    device: str | None = None,
) -> NoiseCheck:
    """Compare agreement with the silver labels (``cleanlab``'s out-of-fold probabilities on
    (X, y)) and with the gold dev labels (a head fitted on all of (X, y) at cleanlab's tuned
    penalty). The out-of-fold heads see less data than the full one, which leans the check
    towards "random", i.e. towards serving cleanlab's ranking."""
    y = np.asarray(y, dtype=np.int64)
    y_dev = np.asarray(y_dev, dtype=np.int64)
    head = fit_logistic_head(X, y, n_classes, l2=cleanlab.l2, device=device)
    silver = float((cleanlab.pred_probs.argmax(axis=1) == y).mean())
    gold = float((head.predict_proba(X_dev).argmax(axis=1) == y_dev).mean())
    return NoiseCheck(silver, gold)
