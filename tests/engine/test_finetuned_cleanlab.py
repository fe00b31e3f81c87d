"""cleanlab on the encoder fine-tuned in folds: every item's probabilities come from the fold
model that never saw it and did see every gold dev row (checked against fitting that model
separately), the ranking is
cleanlab's label quality on them, and the CPU estimate and the on/off rule are what they say."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cleanlab.rank import get_label_quality_scores

from tests.engine.conftest import fit_directly, silver_texts
from workers.engine.baselines import stratified_folds
from workers.engine.finetuned_cleanlab import (
    FoldFineTuning,
    finetuned_cleanlab,
    finetunes,
)

L2 = 1e-2
CONFIG = FoldFineTuning(folds=3, epochs=1, lr=2e-4, max_length=32, batch_size=8)


@pytest.fixture(scope="module")
def data(demo_frame) -> dict:
    return silver_texts(demo_frame, 7, 36, 6)


@pytest.fixture(scope="module")
def run(data, encoder_path):
    fractions: list[float] = []
    result = finetuned_cleanlab(
        data["texts"],
        data["y"],
        2,
        config=CONFIG,
        l2=L2,
        seed=4,
        gold=data["gold"],
        encoder_path=encoder_path,
        device="cpu",
        progress=fractions.append,
    )
    return result, fractions


def test_each_item_is_scored_by_the_fold_model_that_never_saw_it(data, run, encoder_path):
    result, fractions = run
    np.testing.assert_array_equal(result.fold, stratified_folds(data["y"], CONFIG.folds, 4))
    texts = np.asarray(data["texts"], dtype=object)
    gold_texts, gold_y = data["gold"]
    assert len(result.pred_probs) == len(texts)  # gold rows train, they are not ranked
    for f in range(CONFIG.folds):
        held = result.fold == f
        alone = fit_directly(
            CONFIG,
            [*texts[~held], *gold_texts],
            np.concatenate([data["y"][~held], gold_y]),
            encoder_path,
            l2=L2,
            seed=4,
        )
        np.testing.assert_allclose(
            result.pred_probs[held], alone.predict_proba(list(texts[held])), atol=1e-12
        )
    # progress within each fold run as well as at its end
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {1 / 3, 2 / 3} <= set(fractions) and len(fractions) > CONFIG.folds


def test_the_ranking_is_cleanlabs_label_quality_on_those_probabilities(data, run):
    result, _ = run
    quality = get_label_quality_scores(data["y"], result.pred_probs, method="self_confidence")
    np.testing.assert_allclose(result.suspicion, 1.0 - quality)
    taken = result.pred_probs[np.arange(len(data["y"])), data["y"]]
    assert result.cv_log_loss == {L2: pytest.approx(float(-np.log(taken).mean()))}


def test_cpu_estimate_counts_the_item_epochs_every_fold_trains():
    # 5 folds, each 3 epochs over 4/5 of 1,000 items: 12,000 item-epochs at 0.027 s each
    assert FoldFineTuning().cpu_estimate_s(1000, 27.0) == pytest.approx(324.0)
    # 2 folds of 1 epoch over half of 500 items each: 500 item-epochs at 0.1 s
    assert FoldFineTuning(folds=2, epochs=1).cpu_estimate_s(500, 100.0) == pytest.approx(50.0)
    # and 100 gold dev rows in both folds' training: 200 item-epochs more
    assert FoldFineTuning(folds=2, epochs=1).cpu_estimate_s(500, 100.0, 100) == pytest.approx(70.0)


@pytest.mark.parametrize(
    ("mode", "device", "expected"),
    [
        ("on", "cpu", True),
        ("off", "cuda", False),
        ("auto", "cpu", False),
        ("auto", "cuda", True),
    ],
)
def test_fine_tuning_is_on_where_asked_or_on_a_gpu(mode, device, expected):
    assert finetunes(mode, device) is expected


def test_auto_without_a_device_follows_this_machine():
    assert finetunes("auto", None) is torch.cuda.is_available()
