"""The training job takes influence on dev plus the gold training rows, with the right polarity:
gold rows are everything but unreviewed silver, and the setting turns it off. With a dev set
the served head's biases are re-fitted there, unless that setting is off."""

from __future__ import annotations

import numpy as np

from app.core.config import Settings
from tests.support import demo_rows
from workers.engine import ExactHeadInfluence
from workers.engine.embeddings import cached_embeddings
from workers.kinds.text_classification.pipeline import (
    calibrates,
    embedding_cache_dir,
    embedding_options,
    gold_training_rows,
    score_texts,
)


def test_biases_are_re_fitted_only_on_a_dev_set_with_enough_of_every_class():
    settings = Settings(calibrate_min_dev_per_class=2)
    assert calibrates(np.array([0, 0, 1, 1]), 2, settings)
    assert not calibrates(np.array([0, 0, 1]), 2, settings)  # one item of class 1
    assert not calibrates(np.array([0, 0, 1, 1]), 3, settings)  # class 2 missing
    assert not calibrates(None, 2, settings) and not calibrates(np.array([]), 2, settings)
    off = Settings(calibrate_on_dev=False, calibrate_min_dev_per_class=2)
    assert not calibrates(np.array([0, 0, 1, 1]), 2, off)


def test_gold_rows_are_all_but_unreviewed_silver():
    settings = Settings(device="cpu")
    np.testing.assert_array_equal(
        gold_training_rows([True, False, True, False], settings), [False, True, False, True]
    )
    assert gold_training_rows([], settings) is None
    assert gold_training_rows(None, settings) is None
    assert gold_training_rows([True, False], Settings(gold_train_targets=False)) is None


def test_training_job_ranks_by_influence_on_dev_and_gold_rows(tmp_path):
    rows = demo_rows(150)
    train, dev = rows[:110], rows[110:]
    labels = ["fresh", "rotten"]
    y = np.array([labels.index(r["label"]) for r in train])
    y_dev = np.array([labels.index(r["reference_label"]) for r in dev])
    unreviewed_silver = np.arange(len(train)) >= 40  # the first 40 rows: gold training labels
    settings = Settings(  # the dev rows hold 7 fresh snippets: calibrate with them
        data_dir=tmp_path, device="cpu", compare_with_cleanlab=False, calibrate_min_dev_per_class=5
    )
    texts = [r["text"] for r in train]
    dev_texts = [r["text"] for r in dev]
    out = score_texts(
        texts,
        y,
        2,
        settings,
        dev_texts=dev_texts,
        dev_y=y_dev,
        prunable=unreviewed_silver.tolist(),
    )
    X = cached_embeddings(
        texts + dev_texts,
        settings.encoder_path(),
        embedding_cache_dir(settings),
        **embedding_options(settings),
    )
    X_train, X_dev = X[: len(texts)], X[len(texts) :]
    # served with its biases re-fitted on dev (the default), influence on that model
    est = ExactHeadInfluence.fit(X_train, y, 2, l2=settings.head_l2).calibrated(X_dev, y_dev)
    gold = ~unreviewed_silver
    expected = est.dev_influence(
        np.concatenate([X_dev, X_train[gold]]), np.concatenate([y_dev, y[gold]])
    )
    np.testing.assert_allclose(out.result.dev_influence, expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(out.result.probs, est.model.predict_proba(X_train), rtol=1e-6)
    assert not np.allclose(out.result.dev_influence, est.dev_influence(X_dev, y_dev))
    assert out.dev_metrics["estimator_dev_calibrated"] == 1.0


def test_calibration_on_dev_can_be_turned_off(tmp_path):
    rows = demo_rows(120)
    labels = ["fresh", "rotten"]
    train, dev = rows[:80], rows[80:]
    settings = Settings(
        data_dir=tmp_path, device="cpu", compare_with_cleanlab=False, calibrate_on_dev=False
    )
    out = score_texts(
        [r["text"] for r in train],
        [labels.index(r["label"]) for r in train],
        2,
        settings,
        dev_texts=[r["text"] for r in dev],
        dev_y=[labels.index(r["reference_label"]) for r in dev],
    )
    assert not out.result.influence.is_calibrated
    np.testing.assert_array_equal(out.result.head.bias, out.result.influence.trained.bias)
    assert "estimator_dev_calibrated" not in out.dev_metrics
