"""The app lists estimators without importing the engine; both lists must name the same ones."""

from app.kinds import TaskKind
from app.kinds.estimators import ESTIMATORS
from workers.engine.choice import NOISE_CHECK
from workers.engine.estimators import ESTIMATORS as ENGINE_ESTIMATORS
from workers.engine.scoring import BASELINES


def test_app_and_engine_know_the_same_estimators():
    texts = {name: info for name, info in ESTIMATORS.items() if info.task == "text_classification"}
    baselines = {name for name, info in texts.items() if info.kind == "baseline"}
    influence = {name for name, info in texts.items() if info.kind == "influence"}
    policies = {name for name, info in texts.items() if info.kind == "policy"}
    assert influence == set(ENGINE_ESTIMATORS)
    assert baselines == set(BASELINES)
    assert policies == {NOISE_CHECK}


def test_sequence_tagging_estimators_are_the_names_segment_scoring_reports():
    """score_segments names its ranking segment_dev (with a dev set) or segment_self."""
    tagging = {n for n, i in ESTIMATORS.items() if i.task == TaskKind.sequence_tagging}
    assert tagging == {"segment_dev", "segment_self"}
    assert set(TaskKind) == {info.task for info in ESTIMATORS.values()}
