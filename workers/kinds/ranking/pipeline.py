"""Judgments in, scored judgments out: the ranking counterpart of ``score_tagged``, shared by
the worker job and ``assay score --task ranking``.

A judgment comes as (query id, feature map, grade); the feature maps of training and dev
judgments line up by name (``feature_order``), a missing feature counting 0. Features are
standardised on the training judgments inside ``score_ranking``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from app.core.config import Settings
from app.kinds.ranking.formats import feature_order
from workers.engine.ranking import RankingScores, score_ranking


@dataclass(frozen=True)
class Judged:
    qid: str
    features: Mapping[str, float]
    grade: int


@dataclass
class RankingOutput:
    scores: RankingScores
    feature_names: list[str]
    top_share: np.ndarray  # (N,) the model's top-one probability of the judgment in its query
    metrics: dict[str, float | int | str]


def matrix(judged: Sequence[Judged], names: Sequence[str]) -> np.ndarray:
    """(N, len(names)) float64 features, 0 where a judgment lacks one."""
    column = {name: j for j, name in enumerate(names)}
    X = np.zeros((len(judged), len(names)), dtype=np.float64)
    for i, row in enumerate(judged):
        for name, value in row.features.items():
            X[i, column[name]] = value
    return X


def top_one_share(scores: np.ndarray, query: np.ndarray) -> np.ndarray:
    """softmax of the scores within each query (ListNet's top-one probability)."""
    shifted = np.exp(scores - scores.max())
    return shifted / np.bincount(query, shifted)[query]


def score_judgments(
    train: Sequence[Judged],
    settings: Settings,
    *,
    dev: Sequence[Judged] = (),
    estimator: str | None = None,
) -> RankingOutput:
    """Fit the ranker (ASSAY_RANKING_MODEL, _LOSS, _PENALTY) on ``train`` and rank its
    judgments (``score_ranking``; ``estimator`` None: the engine's measured default; the
    influence on ``dev``'s loss is computed when dev judgments are given). ValueError when no
    judgment has a grade above 0."""
    names = feature_order(name for row in (*train, *dev) for name in row.features)
    if not any(row.grade > 0 for row in train):
        raise ValueError("no training judgment has a grade above 0: there is no order to learn")
    dev_judged = None
    if dev:
        dev_judged = (matrix(dev, names), [r.grade for r in dev], [r.qid for r in dev])
    scores = score_ranking(
        matrix(train, names),
        [r.grade for r in train],
        [r.qid for r in train],
        dev=dev_judged,
        model=settings.ranking_model,
        loss=settings.ranking_loss,
        penalty=settings.ranking_penalty,
        estimator=estimator,
        evidence_k=settings.evidence_k,
        device=settings.device,
    )
    _, query = np.unique([r.qid for r in train], return_inverse=True)
    metrics = {**scores.metrics, "estimator": str(scores.estimator), "features": len(names)}
    return RankingOutput(scores, names, top_one_share(scores.scores, query.ravel()), metrics)
