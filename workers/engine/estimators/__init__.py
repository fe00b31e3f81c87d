"""Influence estimators, selectable by name (``ESTIMATORS``); all share the sign convention of
``base.InfluenceEstimator`` and train their own model (``FittableEstimator.fit``)."""

from .base import Classifier, FittableEstimator, InfluenceEstimator, TopK
from .exact_head import ExactHeadInfluence

ESTIMATORS: dict[str, type[FittableEstimator]] = {cls.name: cls for cls in (ExactHeadInfluence,)}

__all__ = [
    "ESTIMATORS",
    "Classifier",
    "ExactHeadInfluence",
    "FittableEstimator",
    "InfluenceEstimator",
    "TopK",
]
