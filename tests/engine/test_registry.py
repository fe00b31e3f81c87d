"""The app lists estimators without importing the engine; both lists must name the same ones."""

from app.kinds.estimators import ESTIMATORS
from workers.engine.estimators import ESTIMATORS as ENGINE_ESTIMATORS


def test_app_and_engine_know_the_same_estimators():
    baselines = {name for name, info in ESTIMATORS.items() if info.kind == "baseline"}
    influence = {name for name, info in ESTIMATORS.items() if info.kind == "influence"}
    assert influence == set(ENGINE_ESTIMATORS)
    assert baselines == {"loss", "margin", "cleanlab"}
