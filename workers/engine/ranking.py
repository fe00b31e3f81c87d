"""Relevance judgments in, a suspicion ranking out: fit a listwise ranker (``listwise``), VIF
over its judgments (``vif``, removal gradients from ``listwise_removal``), and rank judgments
by how likely their grade is wrong.

Signals per judgment (sign convention of the classification estimators):

- ``influence``: VIF's predicted change of the gold dev queries' mean loss (no penalty) if the
  judgment were left out; negative = harmful, so harm = -influence.
- ``self_influence``: D_iᵀ H⁻¹ D_i, how far the fit bends to accommodate the judgment.
- ``residual``: the practitioner's check without influence: within its query, the gap between
  the judgment's grade and the grade the model's order expects there (the query's grades
  sorted high to low, read at the judgment's model rank), ties broken by the gap between its
  grade's and its score's percentile rank in the query.
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
    RESIDUAL = "grade_residual"  # the baseline: grade vs the model's rank-matched grade
    HARM_RESIDUAL = "vif_dev_harm+residual"  # reciprocal-rank fusion of the two
    SELF_RESIDUAL = "vif_self_influence+residual"

    @property
    def needs_dev(self) -> bool:
        return self in (RankingEstimator.DEV_HARM, RankingEstimator.HARM_RESIDUAL)


DEFAULT_ESTIMATOR = RankingEstimator.HARM_RESIDUAL
DEFAULT_WITHOUT_DEV = RankingEstimator.SELF_RESIDUAL


@dataclass
class RankingScores:
    theta: np.ndarray
    scores: np.ndarray  # (N,) model score of each judgment
    model_rank: np.ndarray  # (N,) 1-based rank within its query by the model
    influence: np.ndarray | None  # (N,) on the dev loss; None without dev
    self_influence: np.ndarray
    residual: np.ndarray
    suspicion: np.ndarray
    suspicion_rank: np.ndarray  # 1 = most suspicious
    estimator: RankingEstimator
    metrics: dict[str, float | int | str]
    # (target judgment, evidence judgment, role, rank 1.., pairwise influence); evidence from
    # other queries (a query's own judgments compete in its softmax by construction)
    evidence: list[tuple[int, int, str, int, float]]


def grade_residual(grades: np.ndarray, scores: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The residual baseline (module docstring): |grade - rank-matched grade| plus, below 1,
    half the gap between the grade's (mid-rank for ties) and the score's percentile."""
    grades = np.asarray(grades, dtype=np.float64)
    rank = model_ranks(scores, query)
    by_query = np.lexsort((-grades, query))  # per query, grades high to low
    start = np.r_[0, np.cumsum(np.bincount(query))[:-1]]
    expected = grades[by_query][start[query] + rank - 1]
    size = np.bincount(query)[query]
    grade_pct = np.empty_like(grades)
    for q in range(int(query.max(initial=-1)) + 1):
        rows = np.flatnonzero(query == q)
        grade_pct[rows] = (rankdata(grades[rows]) - 0.5) / len(rows)
    score_pct = (size - rank + 0.5) / size
    return np.abs(grades - expected) + 0.5 * np.abs(grade_pct - score_pct)


def suspicion(
    estimator: RankingEstimator,
    influence: np.ndarray | None,
    self_influence: np.ndarray,
    residual: np.ndarray,
) -> np.ndarray:
    """Higher = more suspicious, for one estimator; ValueError for a dev-based estimator
    without a dev influence."""
    if estimator.needs_dev and influence is None:
        raise ValueError(f"{estimator} needs gold dev judgments")
    signals: dict[RankingEstimator, Callable[[], np.ndarray]] = {
        RankingEstimator.DEV_HARM: lambda: -influence,
        RankingEstimator.SELF_INFLUENCE: lambda: self_influence,
        RankingEstimator.RESIDUAL: lambda: residual,
        RankingEstimator.HARM_RESIDUAL: lambda: reciprocal_rank_fusion(-influence, residual),
        RankingEstimator.SELF_RESIDUAL: lambda: reciprocal_rank_fusion(self_influence, residual),
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
    hidden: int = 32,
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
    measured default, ``DEFAULT_ESTIMATOR`` with dev judgments, else ``DEFAULT_WITHOUT_DEV``).
    ``damping`` (None: 0 for the linear model, ``MLP_DAMPING`` for the MLP) is added to the
    Hessian; the MLP solves with conjugate gradients beyond 2,000 parameters. Evidence covers
    the ``evidence_targets`` most suspicious judgments."""
    model, loss = ScoreModel(model), ListLoss(loss)
    if estimator is None:
        estimator = DEFAULT_ESTIMATOR if dev is not None else DEFAULT_WITHOUT_DEV
    estimator = RankingEstimator(estimator)
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
        influence = vif.influence(dev_problem.data_loss)
        with torch.no_grad():
            dev_scores = dev_problem.scorer(theta, dev_problem.data.features).cpu().numpy()
            metrics["dev_loss"] = float(dev_problem.data_loss(theta))
        metrics["dev_ndcg@10"] = ndcg_at(
            dev_scores, dev_problem.data.grades.cpu().numpy(), dev_problem.data.query.cpu().numpy()
        )
    self_influence = vif.self_influence()
    residual = grade_residual(g, scores, query)
    suspicious = suspicion(estimator, influence, self_influence, residual)
    rank = rank_descending(suspicious)
    targets = np.argsort(rank)[:evidence_targets]
    return RankingScores(
        theta=theta.cpu().numpy(),
        scores=scores,
        model_rank=model_ranks(scores, query),
        influence=influence,
        self_influence=self_influence,
        residual=residual,
        suspicion=suspicious,
        suspicion_rank=rank,
        estimator=estimator,
        metrics=metrics,
        evidence=evidence_for(vif, targets, query, evidence_k),
    )
