"""Re-annotation simulated against known gold labels (InfFeed objective 2), for the benchmarks.

A ranker orders the silver extension; per round the top unreviewed items get their gold label
and the head is retrained. Influence, loss, cleanlab and random rankers compare on equal terms.
The product never simulates: it ranks once per job (``workers.engine.scoring``) and an annotator
re-labels, so this lives with the benchmarks, not the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workers.engine.baselines import cleanlab_scores, loss_scores
from workers.engine.estimators import ESTIMATORS, ExactHeadInfluence
from workers.engine.expected_gain import expected_gain, gold_head_probs
from workers.engine.head import fit_logistic_head
from workers.engine.inffeed import Ranker, most_suspicious, served_f1
from workers.engine.scoring import influence_targets


def influence_ranker(
    X_dev: np.ndarray,
    y_dev: np.ndarray,
    n_classes: int,
    *,
    l2: float,
    estimator: str = "exact_head",
    gold_rows: np.ndarray | None = None,
    calibrate: bool = False,
    gain_weighted: bool = False,
    device: str | None = None,
) -> Ranker:
    """Suspicion = -dev influence of the estimator's model trained on the current labels;
    with ``gain_weighted``, as the ``noise_check`` default serves it, weighted by a head trained
    on the same gold items into the expected gain of re-annotating (``expected_gain``).

    As in the product, the influence is taken on the dev set plus the training items whose
    label is gold: ``gold_rows`` (gold from the start) and those reviewed so far
    (``scoring.influence_targets``); with ``calibrate`` (exact head only), on the model whose
    biases are re-fitted on dev (``ExactHeadInfluence.calibrated``), the model then served.

    Why it suits re-annotation: with two classes the removal gradient of an item labelled y is
    p(other) times the gradient change of flipping its label, so -dev influence equals
    p(other) x the dev-loss drop predicted for correcting the label, i.e. the expected gain
    of re-annotating it when the model's p(other) is the chance that the label is wrong.
    """

    if calibrate and estimator != ExactHeadInfluence.name:
        raise ValueError(f"only {ExactHeadInfluence.name} calibrates its biases, not {estimator}")

    def rank(X: np.ndarray, y: np.ndarray, reviewed: np.ndarray) -> np.ndarray:
        est = ESTIMATORS[estimator].fit(X, y, n_classes, l2=l2, device=device)
        if calibrate:
            est = est.calibrated(X_dev, y_dev)
        gold = np.asarray(reviewed, dtype=bool)
        if gold_rows is not None:
            gold = gold | np.asarray(gold_rows, dtype=bool)
        targets = influence_targets(X_dev, y_dev, X, y, gold)
        harm = -est.dev_influence(*targets)
        gold_probs = (
            gold_head_probs(X, *targets, n_classes, l2=l2, device=device) if gain_weighted else None
        )
        if gold_probs is None:
            return harm
        return expected_gain(harm, y, est.trained.predict_proba(X), gold_probs)

    return rank


def loss_ranker(n_classes: int, *, l2: float, device: str | None = None) -> Ranker:
    """Suspicion = training loss of the head trained on the current labels."""

    def rank(X: np.ndarray, y: np.ndarray, reviewed: np.ndarray) -> np.ndarray:
        head = fit_logistic_head(X, y, n_classes, l2=l2, device=device)
        return loss_scores(head.predict_proba(X), y)

    return rank


def cleanlab_ranker(
    n_classes: int,
    *,
    seed: int = 0,
    l2_grid: Sequence[float] | None = None,
    device: str | None = None,
) -> Ranker:
    """Suspicion from ``baselines.cleanlab_scores`` (tuned out-of-fold head) on current labels."""

    def rank(X: np.ndarray, y: np.ndarray, reviewed: np.ndarray) -> np.ndarray:
        return cleanlab_scores(X, y, n_classes, seed=seed, l2_grid=l2_grid, device=device)

    return rank


def random_ranker(seed: int = 0) -> Ranker:
    """Uniformly random order: what re-annotation achieves without any ranking."""
    rng = np.random.default_rng(seed)
    return lambda X, y, reviewed: rng.random(len(y))


def _round_sizes(total: int, rounds: int) -> np.ndarray:
    return np.diff(np.linspace(0, total, rounds + 1).round().astype(np.int64))


@dataclass
class TriageStep:
    """State after one re-annotation round: cumulative count, the labels, this round's picks,
    and dev macro-F1 of the head retrained on those labels."""

    n_reannotated: int
    labels: np.ndarray
    chosen: np.ndarray
    dev_f1: float


def triage_rounds(
    X: np.ndarray,
    y_silver: np.ndarray,
    y_gold: np.ndarray,
    extension_mask: np.ndarray,
    X_dev: np.ndarray,
    y_dev: np.ndarray,
    *,
    ranker: Ranker,
    budget_fraction: float,
    rounds: int,
    l2: float,
    n_classes: int | None = None,
    calibrate: bool = False,
    device: str | None = None,
) -> list[TriageStep]:
    """Simulate re-annotation: per round, rank, replace silver by gold for the top unreviewed
    extension items, retrain (``calibrate``: biases re-fitted on dev, as served). The total is
    round(budget_fraction · |extension|), split evenly over ``rounds``; later rounds rank with
    the labels fixed so far."""
    ext = np.asarray(extension_mask, dtype=bool)
    y = np.asarray(y_silver, dtype=np.int64).copy()
    y_gold = np.asarray(y_gold, dtype=np.int64)
    if n_classes is None:
        n_classes = int(np.concatenate([y, y_gold, np.asarray(y_dev)]).max()) + 1
    reviewed = np.zeros(len(y), dtype=bool)
    steps: list[TriageStep] = []
    for size in _round_sizes(round(budget_fraction * ext.sum()), rounds):
        chosen = np.empty(0, dtype=np.int64)
        if size > 0:
            suspicion = np.asarray(ranker(X, y.copy(), reviewed.copy()), dtype=np.float64)
            chosen = most_suspicious(suspicion, ext & ~reviewed, size)
            y[chosen] = y_gold[chosen]
            reviewed[chosen] = True
        f = served_f1(X, y, X_dev, y_dev, n_classes, l2, device=device, calibrate=calibrate)
        steps.append(TriageStep(int(reviewed.sum()), y.copy(), chosen, f))
    return steps
