"""Assay numerics: embeddings, convex head, influence estimators, scoring.

Pure numerics: no database, task queue or web framework is imported here.
"""

from .embeddings import cached_embeddings, default_encoder_path, embed_texts
from .estimators import (
    ESTIMATORS,
    ExactHeadInfluence,
    TopK,
    TracInCP,
    TurnoverDropoutInfluence,
    fit_sgd_head,
    fit_turnover_head,
)
from .head import LogisticHead, fit_logistic_head
from .scoring import BASELINES, ScoreResult, rank_descending, score_training_set

__all__ = [
    "BASELINES",
    "ESTIMATORS",
    "ExactHeadInfluence",
    "LogisticHead",
    "ScoreResult",
    "TopK",
    "TracInCP",
    "TurnoverDropoutInfluence",
    "cached_embeddings",
    "default_encoder_path",
    "embed_texts",
    "fit_logistic_head",
    "fit_sgd_head",
    "fit_turnover_head",
    "rank_descending",
    "score_training_set",
]
