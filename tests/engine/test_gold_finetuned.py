"""The second judge for patterned errors: its disbelief is 1 - p(label) of an encoder fine-tuned
on the gold rows alone (checked against fitting that model separately), the pipeline builds it
from the gold dev rows and the gold training rows only where every class has enough of them,
and the rank average is the mean of mid-rank percentiles, blind to each ranking's units."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from app.core.config import Settings
from tests.engine.conftest import fit_directly, silver_texts
from workers.engine.finetuned_cleanlab import FoldFineTuning
from workers.engine.gold_finetuned import gold_finetuned_disbelief, rank_average
from workers.kinds.text_classification.pipeline import gold_finetuned_ranking

L2 = 1e-2
CONFIG = FoldFineTuning(epochs=1, lr=2e-4, max_length=32)  # the batch size the settings give


@pytest.fixture(scope="module")
def data(demo_frame) -> dict:
    return silver_texts(demo_frame, 5, 30, 12)


def gold_model_disbelief(texts, y, gold_texts, gold_y, encoder_path, seed) -> np.ndarray:
    """1 - p(y) of the model fine-tuned on the gold rows alone, fitted here directly."""
    model = fit_directly(CONFIG, gold_texts, gold_y, encoder_path, l2=L2, seed=seed)
    probs = model.predict_proba(list(texts))
    return 1.0 - probs[np.arange(len(y)), y]


def test_disbelief_is_the_gold_only_models_doubt_in_each_label(data, encoder_path):
    disbelief = gold_finetuned_disbelief(
        data["texts"],
        data["y"],
        data["gold"],
        2,
        config=CONFIG,
        l2=L2,
        seed=3,
        encoder_path=encoder_path,
        device="cpu",
    )
    expected = gold_model_disbelief(data["texts"], data["y"], *data["gold"], encoder_path, 3)
    np.testing.assert_allclose(disbelief, expected, atol=1e-12)
    assert disbelief.shape == (len(data["y"]),) and np.all((disbelief > 0) & (disbelief < 1))


def test_the_pipeline_judges_by_the_dev_rows_and_the_gold_training_rows(data, encoder_path):
    """Gold training rows join the dev rows; with a class below the settings' minimum of gold
    rows there is no judge at all."""
    settings = Settings(
        encoder=encoder_path,
        finetune_epochs=CONFIG.epochs,
        finetune_lr=CONFIG.lr,
        embed_max_length=CONFIG.max_length,
        head_l2=L2,
        device="cpu",
        gain_weighting_min_gold_per_class=1,
    )
    texts, y = np.asarray(data["texts"], dtype=object), data["y"]
    gold_rows = np.zeros(len(y), dtype=bool)
    gold_rows[:4] = True
    judge = gold_finetuned_ranking(texts, y, data["gold"], gold_rows, 2, settings, None)
    assert judge is not None
    gold_texts = [*data["gold"][0], *texts[:4]]  # dev rows first, as the targets
    gold_y = np.concatenate([data["gold"][1], y[:4]])
    expected = gold_model_disbelief(texts, y, gold_texts, gold_y, encoder_path, 0)
    np.testing.assert_allclose(judge(), expected, atol=1e-12)
    fewest = np.bincount(gold_y, minlength=2).min()
    strict = settings.model_copy(update={"gain_weighting_min_gold_per_class": fewest + 1})
    assert gold_finetuned_ranking(texts, y, data["gold"], gold_rows, 2, strict, None) is None


def test_rank_average_is_the_mean_percentile_whatever_the_units():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.random(50)
    b[:5] = b[5]  # ties share their mid-rank
    expected = ((rankdata(a) - 0.5) / 50 + (rankdata(b) - 0.5) / 50) / 2
    np.testing.assert_allclose(rank_average(a, b), expected)
    np.testing.assert_allclose(rank_average(np.exp(a), 1e6 * b**3), expected)
    weighted = 0.25 * (rankdata(a) - 0.5) / 50 + 0.75 * (rankdata(b) - 0.5) / 50
    np.testing.assert_allclose(rank_average(a, b, weights=(1, 3)), weighted)
