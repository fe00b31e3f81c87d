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

from dataclasses import dataclass, replace

import numpy as np

from .baselines import CleanlabResult, cleanlab_scores_with_info
from .estimators import ExactHeadInfluence
from .head import fit_logistic_head
from .scoring import ScoreResult, rank_descending

NOISE_CHECK = "noise_check"
"""The ranking policy over the exact head's run: it serves influence on the gold dev set or
cleanlab, whichever the noise check says fits the silver labels' errors; the exact head's
model and evidence either way."""
CLEANLAB = "cleanlab"


@dataclass(frozen=True)
class NoiseCheck:
    """``silver_agreement``: share of the ``n_silver`` training items whose silver label the
    out-of-fold head predicts; ``gold_agreement``: share of the ``n_gold`` gold dev items whose
    label the head trained on all silver labels predicts (same tuned penalty). ``margin``: how
    many standard errors the first must exceed the second by to count as patterned."""

    silver_agreement: float
    gold_agreement: float
    n_silver: int
    n_gold: int
    margin: float

    @property
    def z(self) -> float:
        """The agreement gap in standard errors of two independent proportions (a few hundred
        gold items leave the gold agreement uncertain by several points)."""
        s, g = self.silver_agreement, self.gold_agreement
        se = np.sqrt(s * (1 - s) / self.n_silver + g * (1 - g) / self.n_gold)
        return float((s - g) / se) if se > 0 else float(np.sign(s - g) * np.inf)

    @property
    def patterned(self) -> bool:
        """The silver labels are clearly easier to agree with than the gold ones: their errors
        are learnable, and influence on the gold dev set is the ranking to serve. Where the gap
        is within ``margin`` standard errors the check leans to cleanlab: serving it on
        patterned noise loses influence's gain, serving influence on random noise loses to
        cleanlab."""
        return self.z > self.margin


def check_noise(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    X_dev: np.ndarray,
    y_dev: np.ndarray,
    cleanlab: CleanlabResult,
    *,
    margin: float,
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
    return NoiseCheck(silver, gold, len(y), len(y_dev), margin)


@dataclass(frozen=True)
class RankingChoice:
    """What the ``noise_check`` default served (``exact_head``: influence on the gold dev set,
    or ``cleanlab``), the check's figures (None without a gold dev set) and cleanlab's result,
    which the run's comparison with cleanlab reuses."""

    served: str
    check: NoiseCheck | None
    cleanlab: CleanlabResult

    @property
    def reason(self) -> str:
        check = self.check
        if check is None:
            return (
                "no gold dev set to check the noise against: cleanlab, the ranking that "
                "measures best on random noise"
            )
        figures = (
            f"a model agrees with {check.silver_agreement:.1%} of the silver labels out of "
            f"fold and with {check.gold_agreement:.1%} of the gold dev labels, a gap of "
            f"{check.z:+.1f} standard errors (patterned above {check.margin:g})"
        )
        if check.patterned:
            return f"{figures}: the silver errors follow a pattern, so influence on gold dev"
        return f"{figures}: the silver errors look random, so cleanlab"

    def metrics(self) -> dict[str, float | str]:
        out: dict[str, float | str] = {"ranking_served": self.served, "ranking_reason": self.reason}
        if self.check is not None:
            out["noise_check_silver_agreement"] = self.check.silver_agreement
            out["noise_check_gold_agreement"] = self.check.gold_agreement
            out["noise_check_gap_z"] = self.check.z
        return out


def serve_by_noise_check(
    result: ScoreResult,
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    X_dev: np.ndarray | None,
    y_dev: np.ndarray | None,
    *,
    margin: float,
    seed: int = 0,
    device: str | None = None,
) -> tuple[ScoreResult, RankingChoice]:
    """The ``noise_check`` ranking policy: ``result`` (the exact head's run) re-ranked by the
    ranking the check serves, and what it served. With a gold dev set, influence on it
    (``-dev_influence``) where the silver errors look patterned, else tuned cleanlab; without
    one, cleanlab. Evidence, influence and the model stay the exact head's."""
    cleanlab = cleanlab_scores_with_info(X, y, n_classes, seed=seed, device=device)
    check = None
    if X_dev is not None and y_dev is not None and len(X_dev):
        check = check_noise(X, y, n_classes, X_dev, y_dev, cleanlab, margin=margin, device=device)
    if check is not None and check.patterned and result.dev_influence is not None:
        served, suspicion = ExactHeadInfluence.name, -result.dev_influence
    else:
        served, suspicion = CLEANLAB, cleanlab.suspicion
    ranked = replace(
        result, suspicion=suspicion, rank=rank_descending(suspicion), estimator=NOISE_CHECK
    )
    return ranked, RankingChoice(served, check, cleanlab)
