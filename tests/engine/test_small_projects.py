"""A first project is small: every ranking and InfFeed's adjustment work on a handful of items.

Before: 20 training items failed the job ('influencers_dev has 20 proponents, k_grid needs 25')
and fewer than 5 items of the largest label failed cleanlab's 5-fold split, the cleanlab
comparison that every job runs.
"""

import numpy as np
import pytest

from app.core.config import Settings
from workers.engine import score_training_set
from workers.engine.baselines import cleanlab_scores, stratified_folds
from workers.kinds.text_classification.pipeline import finish


@pytest.mark.parametrize(
    "y",
    [[0, 1], [0, 0, 1], [0, 1, 0, 1, 1], [0, 1, 2, 3, 4, 5, 6], [0] * 9 + [1]],
    ids=["one-each", "2-1", "2-3", "7-labels-one-each", "9-1"],
)
def test_folds_on_few_items_hold_every_item_out_once(y):
    fold = stratified_folds(np.array(y), 5, seed=0)
    assert len(fold) == len(y)
    counts = np.bincount(fold)
    assert 2 <= len(counts) <= 5 and counts.min() >= 1  # every fold holds someone out
    suspicion = cleanlab_scores(np.random.default_rng(0).normal(size=(len(y), 3)), y, max(y) + 1)
    assert suspicion.shape == (len(y),) and np.isfinite(suspicion).all()


def test_folds_are_unchanged_with_enough_items():
    y = np.arange(40) % 2
    from sklearn.model_selection import StratifiedKFold

    expected = np.empty(40, dtype=np.int64)
    for f, (_, held) in enumerate(
        StratifiedKFold(5, shuffle=True, random_state=3).split(np.zeros(40), y)
    ):
        expected[held] = f
    np.testing.assert_array_equal(stratified_folds(y, 5, seed=3), expected)


@pytest.mark.parametrize("n_train,n_dev", [(2, 0), (3, 2), (20, 6)])
def test_a_tiny_project_is_scored_with_suggestions(n_train, n_dev):
    """What a job does after embedding (``score_training_set`` then ``pipeline.finish``), with
    cleanlab's comparison and silver pruning on, as by default. (The other frozen estimators
    share these paths; each was run so by hand, a few seconds apiece.)"""
    settings = Settings()
    rng = np.random.default_rng(0)
    X, X_dev, X_test = (rng.normal(size=(n, 8)) for n in (n_train, n_dev, 6))
    y, y_dev, y_test = (np.arange(n) % 2 for n in (n_train, n_dev, 6))
    result = score_training_set(
        X,
        y,
        2,
        X_dev=X_dev if n_dev else None,
        y_dev=y_dev if n_dev else None,
        l2=settings.head_l2,
        k=settings.evidence_k,
        estimator="exact_head",
    )
    out = finish(
        result,
        [X, X_dev, X_test],
        X,
        y,
        2,
        settings,
        y_dev=y_dev if n_dev else None,
        test_y=y_test,
        prunable=[True] * n_train,
    )
    assert settings.compare_with_cleanlab and np.isfinite(out.comparisons["cleanlab"]).all()
    if n_dev:
        assert 1 <= out.dev_metrics["inffeed_k"] <= n_train
        assert out.inffeed.train.influencer_idx.shape[1] <= n_train - 1  # never itself
        assert out.inffeed.test.influencer_idx.shape[1] <= n_train
