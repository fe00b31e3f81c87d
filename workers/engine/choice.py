"""Which ranking fits the data's noise, decided without any truth about the silver labels.

Influence on a gold dev set is the right ranking when silver labels are wrong in a pattern (a
labelling rule, a confusable class): it finds what the dev set contradicts, where
cross-validated confidence (cleanlab) sees nothing, since the pattern is learnable and the
model agrees with it. It is the wrong one when labels are wrong at random: cleanlab then finds
more. The check asks the gold data which ranking's top slice is worth acting on: refit the head
without cleanlab's top ``share`` and, separately, without the top ``share`` by influence on one
half of the gold dev set, and compare the two heads' loss on the other half (both ways round,
so every dev item is held out once and influence never scores the items that judge it).
Patterned errors make the influence slice the clearly better removal; under random errors
cleanlab's slice holds more of the wrong labels and the influence slice is no better. The
check reuses cleanlab's run (made for its ranking anyway) and costs one exact head fit (for
the influence) and four head fits. Where influence is served, each item's harm is weighted into
the expected gain of re-annotating it (``expected_gain``: a head trained on the gold rows only
never learnt the pattern, so its belief that a label is wrong replaces the trained head's,
which undercounts exactly the patterned errors). Where fine-tuning is on, cleanlab's place
in what is served goes to cleanlab on the encoder fine-tuned in folds
(``finetuned_cleanlab``: k fine-tuning runs, made only when it is served), and served
influence is rank-averaged with the disbelief of an encoder fine-tuned on the gold rows alone
(``gold_finetuned``: one short run, made only when influence is served); the check stays on
the frozen vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .agreement import top_items
from .baselines import CleanlabResult, cleanlab_scores_with_info
from .estimators import ExactHeadInfluence
from .expected_gain import expected_gain, gold_head_probs
from .finetuned_cleanlab import FINETUNED_CLEANLAB
from .gold_finetuned import rank_average
from .head import fit_logistic_head
from .scoring import ScoreResult, rank_descending

NOISE_CHECK = "noise_check"
"""The ranking policy over the exact head's run: it serves influence on the gold dev set or
cleanlab (on the fine-tuned encoder where fine-tuning is on), whichever the noise check says
fits the silver labels' errors; the exact head's model and evidence either way."""
CLEANLAB = "cleanlab"
MIN_DEV = 4
"""Fewest gold dev items the check splits in halves (each half needs two items for a standard
error); with fewer there is no check and cleanlab (fine-tuned where that is on) is served."""


@dataclass(frozen=True)
class NoiseCheck:
    """The removal test's figures on ``n_gold`` held-out gold dev items: the mean drop of the
    dev loss (cross-entropy) from the head on every silver label to the head refitted without
    cleanlab's top ``share`` (``gain_cleanlab``) and without influence's (``gain_influence``),
    and the standard error of their per-item difference. ``margin``: how many standard errors
    influence's gain must exceed cleanlab's by to call the noise patterned."""

    gain_cleanlab: float
    gain_influence: float
    standard_error: float
    n_gold: int
    share: float
    margin: float

    @property
    def z(self) -> float:
        """Influence's gain over cleanlab's in standard errors of the paired difference."""
        gap = self.gain_influence - self.gain_cleanlab
        if self.standard_error > 0:
            return float(gap / self.standard_error)
        return float(np.sign(gap) * np.inf)

    @property
    def patterned(self) -> bool:
        """Removing influence's top slice helps the held-out gold loss clearly more than
        removing cleanlab's: the silver errors are learnable, and influence on the gold dev set
        is the ranking to serve. Within ``margin`` standard errors the check leans to
        cleanlab: serving it on patterned noise loses influence's gain, serving influence on
        random noise loses to cleanlab."""
        return self.z > self.margin


def check_noise(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    X_dev: np.ndarray,
    y_dev: np.ndarray,
    cleanlab: CleanlabResult,
    *,
    l2: float,
    share: float,
    margin: float,
    seed: int = 0,
    device: str | None = None,
) -> NoiseCheck:
    """The removal test (module docstring). Influence: the exact head at ``l2`` on each half
    of the dev set (seeded halves); refitted heads: cleanlab's tuned penalty; removed: the top
    ``share`` of the training items (at least one)."""
    y = np.asarray(y, dtype=np.int64)
    y_dev = np.asarray(y_dev, dtype=np.int64)
    if len(y_dev) < MIN_DEV:
        raise ValueError(f"the noise check needs at least {MIN_DEV} gold dev items")

    def dev_loss_without(removed: np.ndarray) -> np.ndarray:
        keep = np.ones(len(y), dtype=bool)
        keep[removed] = False
        head = fit_logistic_head(X[keep], y[keep], n_classes, l2=cleanlab.l2, device=device)
        return head.log_loss(X_dev, y_dev)

    full = fit_logistic_head(X, y, n_classes, l2=cleanlab.l2, device=device).log_loss(X_dev, y_dev)
    without_cleanlab = dev_loss_without(top_items(cleanlab.suspicion, share))
    influence = ExactHeadInfluence.fit(X, y, n_classes, l2=l2, device=device)
    halves = np.array_split(np.random.default_rng(seed).permutation(len(y_dev)), 2)
    without_influence = np.empty(len(y_dev))
    for scored, held in (halves, halves[::-1]):
        harm = -influence.dev_influence(X_dev[scored], y_dev[scored])
        without_influence[held] = dev_loss_without(top_items(harm, share))[held]
    difference = without_cleanlab - without_influence
    return NoiseCheck(
        gain_cleanlab=float((full - without_cleanlab).mean()),
        gain_influence=float((full - without_influence).mean()),
        standard_error=float(difference.std(ddof=1) / np.sqrt(len(difference))),
        n_gold=len(y_dev),
        share=share,
        margin=margin,
    )


@dataclass(frozen=True)
class RankingChoice:
    """What the ``noise_check`` default served (``exact_head``: influence on the gold dev set;
    ``cleanlab``; or ``cleanlab_finetuned``: cleanlab on the encoder fine-tuned in folds, where
    fine-tuning is on), the check's figures (None without a gold dev set) and cleanlab's result
    on the frozen vectors, which the run's comparison with cleanlab reuses."""

    served: str
    check: NoiseCheck | None
    cleanlab: CleanlabResult
    gain_weighted: bool = False
    """Where influence was served: whether each item's harm was weighted into the expected gain
    of re-annotating it by a head trained on the gold rows (``expected_gain``)."""
    gold_finetuned: bool = False
    """Where influence was served: whether it was rank-averaged with the disbelief of an
    encoder fine-tuned on the gold rows alone (``gold_finetuned``)."""
    gold_finetuned_weight: float = 0.5
    """The weight of that encoder's ranks in the average (influence's: the rest)."""
    finetune_estimate_s: float | None = None
    """Where cleanlab on the frozen vectors was served because fine-tuning is off: what the
    fine-tuned ranking would have cost on a CPU (seconds), for the user to weigh."""

    @property
    def finetune_hint(self) -> str:
        """The fine-tuned alternative and its cost, where it was not run ("" otherwise)."""
        if self.finetune_estimate_s is None:
            return ""
        minutes = self.finetune_estimate_s / 60
        cost = "under a minute" if minutes < 1 else f"about {minutes:.0f} min"
        return (
            "Fine-tuning the encoder in folds (ASSAY_FINETUNE=on) may let cleanlab find more "
            f"random label errors: {cost} for these items on a CPU, far less on a GPU"
        )

    @property
    def _random_ranking(self) -> str:
        if self.served == FINETUNED_CLEANLAB:
            return "cleanlab on the encoder fine-tuned in folds"
        return "cleanlab"

    @property
    def reason(self) -> str:
        check = self.check
        if check is None:
            return (
                f"fewer than {MIN_DEV} gold dev items to check the noise against: "
                f"{self._random_ranking}, the ranking that measures best on random noise"
            )
        figures = (
            f"refitting without the {check.share:.0%} of items cleanlab ranks first changes "
            f"the held-out gold dev loss by {-check.gain_cleanlab:+.4f}, without the "
            f"{check.share:.0%} influence ranks first by {-check.gain_influence:+.4f}; "
            f"influence's removal is better by {check.z:+.1f} standard errors (patterned "
            f"above {check.margin:g})"
        )
        if check.patterned:
            weighted = (
                ", each item's harm weighted by a gold-trained head's belief that its label is "
                "wrong (the expected gain of re-annotating it)"
                if self.gain_weighted
                else ""
            )
            averaged = (
                "; its ranks averaged with those of an encoder fine-tuned on the gold rows "
                "alone, by how little it believes each label (weight "
                f"{self.gold_finetuned_weight:g} to the latter)"
                if self.gold_finetuned
                else ""
            )
            return (
                f"{figures}: the silver errors follow a pattern, so influence on gold dev"
                + weighted
                + averaged
            )
        return f"{figures}: the silver errors look random, so {self._random_ranking}"

    def metrics(self) -> dict[str, float | str]:
        out: dict[str, float | str] = {"ranking_served": self.served, "ranking_reason": self.reason}
        if self.served == ExactHeadInfluence.name:
            out["ranking_gain_weighted"] = float(self.gain_weighted)
            out["ranking_gold_finetuned"] = float(self.gold_finetuned)
        if self.finetune_estimate_s is not None:
            out["finetune_estimate_s"] = self.finetune_estimate_s
            out["finetune_hint"] = self.finetune_hint
        if self.check is not None:
            out["noise_check_gain_cleanlab"] = self.check.gain_cleanlab
            out["noise_check_gain_influence"] = self.check.gain_influence
            out["noise_check_z"] = self.check.z
        return out


def gain_weighted_harm(
    result: ScoreResult,
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    gold: tuple[np.ndarray, np.ndarray] | None,
    *,
    min_per_class: int = 1,
    device: str | None = None,
) -> np.ndarray | None:
    """The exact head's harm to the gold targets weighted into the expected gain of
    re-annotating (``expected_gain``), by a head trained on the ``gold`` rows; None where there
    is nothing to weight by (no gold rows, a class with fewer than ``min_per_class`` of them,
    another estimator)."""
    inf = result.influence
    if gold is None or result.dev_influence is None or not isinstance(inf, ExactHeadInfluence):
        return None
    gold_probs = gold_head_probs(
        X, *gold, n_classes, l2=result.l2, min_per_class=min_per_class, device=device
    )
    if gold_probs is None:
        return None
    return expected_gain(-result.dev_influence, y, inf.trained.predict_proba(X), gold_probs)


def serve_by_noise_check(
    result: ScoreResult,
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    X_dev: np.ndarray | None,
    y_dev: np.ndarray | None,
    *,
    share: float,
    margin: float,
    seed: int = 0,
    device: str | None = None,
    finetuned: Callable[[], CleanlabResult] | None = None,
    gold: tuple[np.ndarray, np.ndarray] | None = None,
    gold_min_per_class: int = 1,
    gold_finetuned: Callable[[], np.ndarray] | None = None,
    gold_finetuned_weight: float = 0.5,
) -> tuple[ScoreResult, RankingChoice]:
    """The ``noise_check`` ranking policy: ``result`` (the exact head's run) re-ranked by the
    ranking the check serves, and what it served. With enough gold dev items, influence on them
    (``-dev_influence``) where the silver errors look patterned, else tuned cleanlab; without,
    cleanlab. ``finetuned`` (cleanlab on a fine-tuned encoder, called only when it is served)
    takes cleanlab's place where given. ``gold`` (the gold rows: dev plus gold training items,
    as (X, y)) turns served influence into the expected gain of re-annotating each item
    (``expected_gain``) where every class has ``gold_min_per_class`` of them.
    ``gold_finetuned`` (the disbelief in each label of an encoder fine-tuned on the gold rows,
    called only where influence is served) is rank-averaged with served influence where given,
    its ranks weighted ``gold_finetuned_weight`` and influence's the rest.
    The check itself runs on the frozen vectors either way. Evidence, influence and the model
    stay the exact head's."""
    cleanlab = cleanlab_scores_with_info(X, y, n_classes, seed=seed, device=device)
    check = None
    if X_dev is not None and y_dev is not None and len(y_dev) >= MIN_DEV:
        check = check_noise(
            X,
            y,
            n_classes,
            X_dev,
            y_dev,
            cleanlab,
            l2=result.l2,
            share=share,
            margin=margin,
            seed=seed,
            device=device,
        )
    weighted = None
    if check is not None and check.patterned and result.dev_influence is not None:
        weighted = gain_weighted_harm(
            result, X, y, n_classes, gold, min_per_class=gold_min_per_class, device=device
        )
        served = ExactHeadInfluence.name
        suspicion = -result.dev_influence if weighted is None else weighted
        if gold_finetuned is not None:
            w = gold_finetuned_weight
            suspicion = rank_average(suspicion, gold_finetuned(), weights=(1.0 - w, w))
    elif finetuned is not None:
        served, suspicion = FINETUNED_CLEANLAB, finetuned().suspicion
    else:
        served, suspicion = CLEANLAB, cleanlab.suspicion
    ranked = replace(
        result, suspicion=suspicion, rank=rank_descending(suspicion), estimator=NOISE_CHECK
    )
    averaged = gold_finetuned is not None and served == ExactHeadInfluence.name
    return ranked, RankingChoice(
        served,
        check,
        cleanlab,
        gain_weighted=weighted is not None,
        gold_finetuned=averaged,
        gold_finetuned_weight=gold_finetuned_weight,
    )
