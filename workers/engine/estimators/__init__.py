"""Influence estimators, selectable by name (``ESTIMATORS``); all share the sign convention of
``base.InfluenceEstimator`` and train their own model (``FittableEstimator.fit``)."""

from .base import Classifier, FittableEstimator, InfluenceEstimator, TopK
from .exact_head import ExactHeadInfluence
from .ihvp import IHVPInfluence
from .tracin import SGDRun, TracInCP, fit_sgd_head
from .tracin_finetuned import FineTunedTracIn
from .turnover import TurnoverDropoutInfluence, fit_turnover_head, turnover_masks

ESTIMATORS: dict[str, type[FittableEstimator]] = {
    cls.name: cls
    for cls in (
        ExactHeadInfluence,
        TracInCP,
        TurnoverDropoutInfluence,
        IHVPInfluence,
        FineTunedTracIn,
    )
}
# Estimators whose model is the fine-tuned encoder: their inputs are texts, not embeddings.
TEXT_ESTIMATORS = frozenset({IHVPInfluence.name, FineTunedTracIn.name})

__all__ = [
    "ESTIMATORS",
    "TEXT_ESTIMATORS",
    "Classifier",
    "ExactHeadInfluence",
    "FineTunedTracIn",
    "FittableEstimator",
    "IHVPInfluence",
    "InfluenceEstimator",
    "SGDRun",
    "TopK",
    "TracInCP",
    "TurnoverDropoutInfluence",
    "fit_sgd_head",
    "fit_turnover_head",
    "turnover_masks",
]
