"""Relevance judgments in, a suspicion ranking out: fit a listwise ranker (``listwise``), VIF
over its judgments (``vif``, removal gradients from ``listwise_removal``), and rank judgments
by how likely their grade is wrong.

Signals per judgment (sign convention of the classification estimators):

- ``influence``: VIF's predicted change of the gold dev queries' mean loss (no penalty) if the
  judgment were left out; negative = harmful, so harm = -influence.
- ``self_influence``: D_iᵀ H⁻¹ D_i, how far the fit bends to accommodate the judgment.
- ``gap``: the practitioner's check against the ranker: within its query, |grade - the grade
  the model's order expects there| (the query's grades sorted high to low, read at the
  judgment's model rank), an integer.
- ``pointwise``: the other practitioner's check, |grade - a ridge regression's prediction of
  it from the features| (all queries pooled; in-sample).

The estimators order judgments by one signal, by reciprocal-rank fusion of two, or in tiers:
by gap, and within a gap by a finer signal. The default is the best measured at 10% inspected
on the MSLR sample (``bench.vif_ranking_detection``, settings chosen on seeds 0-2): tiers by
gap, ties by the pointwise residual. Influence did not find flipped grades better there: the
gold dev queries are other queries, and even the influence on the training queries' clean
loss (an oracle) stayed below the residuals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.stats import rankdata

from .listwise import (
    ListLoss,
    RankingProblem,
    ScoreModel,
    Standardisation,
    fit,
    model_ranks,
    ndcg_at,
    ranking_problem,
    target_hessian,
)
from .listwise_removal import vif_objective
from .scoring import rank_descending
from .systematic import reciprocal_rank_fusion
from .vif import VIF

SUPPORTER, OPPOSER = "supporter", "opposer"
MLP_DAMPING = 0.01  # the MLP's Hessian need not be positive definite away from a minimum

Judged = tuple[ArrayLike, ArrayLike, ArrayLike]  # features (N, d), grades (N,), query ids (N,)


class RankingEstimator(StrEnum):
    """Suspicion orderings of judgments (higher = inspect first)."""

    DEV_HARM = "vif_dev_harm"  # -influence on the gold dev loss
    SELF_INFLUENCE = "vif_self_influence"
    GAP = "grade_gap"  # the residual baseline: gap, ties by the percentile-rank gap
    POINTWISE = "pointwise_residual"  # the regression baseline
    HARM_GAP = "vif_dev_harm+gap"  # reciprocal-rank fusion
    GAP_HARM = "grade_gap|vif_dev_harm"  # tiers by gap, ties by harm
    GAP_SELF = "grade_gap|vif_self_influence"
    GAP_POINTWISE = "grade_gap|pointwise_residual"

    @property
    def needs_dev(self) -> bool:
        return self in (
            RankingEstimator.DEV_HARM,
            RankingEstimator.HARM_GAP,
            RankingEstimator.GAP_HARM,
        )


DEFAULT_ESTIMATOR = RankingEstimator.GAP_POINTWISE  # with or without dev judgments


@dataclass
class RankingScores:
    theta: np.ndarray
    scores: np.ndarray  # (N,) model score of each judgment
    model_rank: np.ndarray  # (N,) 1-based rank within its query by the model
    influence: np.ndarray | None  # (N,) on the dev loss; None without dev
    self_influence: np.ndarray
    gap: np.ndarray  # (N,) |grade - rank-matched grade|
    residual: np.ndarray  # (N,) the residual baseline's value (``RankingEstimator.GAP``)
    pointwise: np.ndarray  # (N,) |grade - ridge prediction|
    suspicion: np.ndarray
    suspicion_rank: np.ndarray  # 1 = most suspicious
    estimator: RankingEstimator
    metrics: dict[str, float | int | str]
    # (target judgment, evidence judgment, role, rank 1.., pairwise influence); evidence from
    # other queries (a query's own judgments compete in its softmax by construction)
    evidence: list[tuple[int, int, str, int, float]]


def percentile(values: np.ndarray, query: np.ndarray | None = None) -> np.ndarray:
    """Mid-rank percentile in (0, 1) (ties share one), within each query when given."""
    values = np.asarray(values, dtype=np.float64)
    if query is None:
        return (rankdata(values) - 0.5) / len(values)
    out = np.empty_like(values)
    for q in range(int(query.max(initial=-1)) + 1):
        rows = np.flatnonzero(query == q)
        out[rows] = (rankdata(values[rows]) - 0.5) / len(rows)
    return out


def grade_gap(grades: np.ndarray, scores: np.ndarray, query: np.ndarray) -> np.ndarray:
    """|grade - rank-matched grade| (module docstring)."""
    grades = np.asarray(grades, dtype=np.float64)
    rank = model_ranks(scores, query)
    by_query = np.lexsort((-grades, query))  # per query, grades high to low
    start = np.r_[0, np.cumsum(np.bincount(query))[:-1]]
    return np.abs(grades - grades[by_query][start[query] + rank - 1])


def pointwise_residual(features: np.ndarray, grades: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """|grade - ridge prediction| of standardised features (intercept unpenalised)."""
    X = features - features.mean(axis=0)
    g = np.asarray(grades, dtype=np.float64)
    w = np.linalg.solve(X.T @ X + alpha * np.eye(X.shape[1]), X.T @ (g - g.mean()))
    return np.abs(g - g.mean() - X @ w)


def gap_residual(
    gap: np.ndarray, scores: np.ndarray, grades: np.ndarray, query: np.ndarray
) -> np.ndarray:
    """The residual baseline: the gap, ties broken by half the gap between the grade's and the
    score's percentile rank within the query."""
    return gap + 0.5 * np.abs(percentile(grades, query) - percentile(scores, query))


def tiers(gap: np.ndarray, finer: np.ndarray) -> np.ndarray:
    """Order by gap, and within a gap by ``finer`` (its percentile, kept below 1/2)."""
    return gap + 0.5 * percentile(finer)


def suspicion(
    estimator: RankingEstimator,
    *,
    influence: np.ndarray | None,
    self_influence: np.ndarray,
    gap: np.ndarray,
    pointwise: np.ndarray,
    scores: np.ndarray,
    grades: np.ndarray,
    query: np.ndarray,
) -> np.ndarray:
    """Higher = more suspicious, for one estimator; ValueError for a dev-based estimator
    without a dev influence."""
    if estimator.needs_dev and influence is None:
        raise ValueError(f"{estimator} needs gold dev judgments")
    E = RankingEstimator
    signals: dict[RankingEstimator, Callable[[], np.ndarray]] = {
        E.DEV_HARM: lambda: -influence,
        E.SELF_INFLUENCE: lambda: self_influence,
        E.GAP: lambda: gap + 0.5 * np.abs(percentile(grades, query) - percentile(scores, query)),
        E.POINTWISE: lambda: pointwise,
        E.HARM_GAP: lambda: reciprocal_rank_fusion(-influence, signals[E.GAP]()),
        E.GAP_HARM: lambda: tiers(gap, -influence),
        E.GAP_SELF: lambda: tiers(gap, self_influence),
        E.GAP_POINTWISE: lambda: tiers(gap, pointwise),
    }
    return np.asarray(signals[estimator](), dtype=np.float64)


def evidence_for(
    vif: VIF, targets: np.ndarray, query: np.ndarray, k: int
) -> list[tuple[int, int, str, int, float]]:
    """Top-k supporters (pairwise > 0, largest first) and opposers (< 0, most negative first)
    of each target judgment among the judgments of other queries."""
    if k <= 0 or len(targets) == 0:
        return []
    out: list[tuple[int, int, str, int, float]] = []
    for target, row in zip(targets, vif.pairwise([int(t) for t in targets]), strict=True):
        row = np.where(query == query[target], 0.0, row)
        for role, order in ((SUPPORTER, np.argsort(-row)), (OPPOSER, np.argsort(row))):
            picked = [j for j in order[:k] if (row[j] > 0) == (role == SUPPORTER) and row[j]]
            out += [(int(target), int(j), role, r, float(row[j])) for r, j in enumerate(picked, 1)]
    return out


def score_ranking(
    features: ArrayLike,
    grades: ArrayLike,
    qids: ArrayLike,
    *,
    dev: Judged | None = None,
    model: ScoreModel | str = ScoreModel.LINEAR,
    hidden: int = 8,
    loss: ListLoss | str = ListLoss.LISTNET,
    penalty: float = 0.01,
    estimator: RankingEstimator | str | None = None,
    damping: float | None = None,
    evidence_k: int = 5,
    evidence_targets: int = 50,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> RankingScores:
    """Fit the ranker on the training judgments (features standardised with their own mean and
    standard deviation), VIF over every judgment, and rank them by ``estimator`` (None: the
    measured default, ``DEFAULT_ESTIMATOR``). ``damping`` (None: 0 for the linear model,
    ``MLP_DAMPING`` for the MLP) is added to the Hessian. The MLP (``hidden`` tanh units,
    hidden·(d + 2) parameters) gets the exact autodiff Hessian up to 2,000 parameters and
    conjugate gradients beyond (slow: one Hessian-vector product per judgment and step).
    Evidence covers the ``evidence_targets`` most suspicious judgments."""
    model, loss = ScoreModel(model), ListLoss(loss)
    estimator = RankingEstimator(estimator or DEFAULT_ESTIMATOR)
    standardisation = Standardisation.of(features)

    def problem(judged: Judged) -> RankingProblem:
        return ranking_problem(
            *judged,
            standardisation=standardisation,
            model=model,
            hidden=hidden,
            loss=loss,
            penalty=penalty,
            device=device,
        )

    train = problem((features, grades, qids))
    theta = fit(train, seed=seed)
    if damping is None:
        damping = MLP_DAMPING if model is ScoreModel.MLP else 0.0
    vif = VIF.fit(vif_objective(train), theta, damping=damping)
    query = train.data.query.cpu().numpy()
    g = train.data.grades.cpu().numpy()
    with torch.no_grad():
        scores = train.scorer(theta, train.data.features).cpu().numpy()
    metrics: dict[str, float | int | str] = {
        "model": str(model),
        "loss": str(loss),
        "penalty": penalty,
        "judgments": train.data.n,
        "queries": train.data.n_queries,
        "parameters": int(theta.numel()),
        "solver": vif.solver,
        "train_ndcg@10": ndcg_at(scores, g, query),
    }
    influence = None
    if dev is not None:
        dev_problem = problem(dev)
        influence = vif.influence(dev_problem.data_loss, target_hessian(dev_problem, theta))
        with torch.no_grad():
            dev_scores = dev_problem.scorer(theta, dev_problem.data.features).cpu().numpy()
            metrics["dev_loss"] = float(dev_problem.data_loss(theta))
        metrics["dev_ndcg@10"] = ndcg_at(
            dev_scores, dev_problem.data.grades.cpu().numpy(), dev_problem.data.query.cpu().numpy()
        )
    self_influence = vif.self_influence()
    gap = grade_gap(g, scores, query)
    pointwise = pointwise_residual(train.data.features.cpu().numpy(), g)
    suspicious = suspicion(
        estimator,
        influence=influence,
        self_influence=self_influence,
        gap=gap,
        pointwise=pointwise,
        scores=scores,
        grades=g,
        query=query,
    )
    rank = rank_descending(suspicious)
    targets = np.argsort(rank)[:evidence_targets]
    return RankingScores(
        theta=theta.cpu().numpy(),
        scores=scores,
        model_rank=model_ranks(scores, query),
        influence=influence,
        self_influence=self_influence,
        gap=gap,
        residual=gap_residual(gap, scores, g, query),
        pointwise=pointwise,
        suspicion=suspicious,
        suspicion_rank=rank,
        estimator=estimator,
        metrics=metrics,
        evidence=evidence_for(vif, targets, query, evidence_k),
    )
