"""Influence estimators, selectable by name (``ESTIMATORS``); all share the sign convention of
``base.InfluenceEstimator`` and train their own model (``FittableEstimator.fit``)."""

from .base import Classifier, FittableEstimator, InfluenceEstimator, TopK
from .exact_head import ExactHeadInfluence
from .tracin import SGDRun, TracInCP, fit_sgd_head

ESTIMATORS: dict[str, type[FittableEstimator]] = {
    cls.name: cls for cls in (ExactHeadInfluence, TracInCP)
}

__all__ = [
    "ESTIMATORS",
    "Classifier",
    "ExactHeadInfluence",
    "FittableEstimator",
    "InfluenceEstimator",
    "SGDRun",
    "TopK",
    "TracInCP",
    "fit_sgd_head",
]
