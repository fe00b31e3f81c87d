"""The retraining job's second model, trained without the most harmful unreviewed silver.

Checked against an independent computation: the items left out are the top of the ranking
among the prunable ones (recomputed here by sorting), the share is the best dev F1 over the
grid, and the reported test F1 equals a head refitted on the kept rows only (removal, not
weights).
"""

from __future__ import annotations

import numpy as np
import pytest

from app.core.config import Settings
from tests.engine.synthetic import linear_sampler
from workers.engine import fit_logistic_head, score_training_set
from workers.engine.inffeed import DEFAULT_DROP_FRACTIONS, macro_f1
from workers.kinds.text_classification.pipeline import leave_out_harmful

L2 = 1e-2


@pytest.fixture(scope="module")
def systematic_noise():
    """Class 1 items with a large first feature are labelled 0 in the silver part (a rule, as
    a lexicon labeller errs), so the silver pulls the boundary; gold dev and test sets."""
    rng = np.random.default_rng(3)
    draw = linear_sampler(rng, 5, 0.2)
    X, y_gold = draw(400)
    Xd, yd = draw(150)
    Xt, yt = draw(300)
    silver = np.arange(400) >= 80
    y = np.where(silver & (y_gold == 1) & (X[:, 0] > 0), 0, y_gold)
    reviewed = silver & (np.arange(400) % 10 == 0)  # annotators decided these already
    y[reviewed] = y_gold[reviewed]
    return X, y, silver & ~reviewed, Xd, yd, Xt, yt


def test_left_out_items_are_the_top_prunable_ones_and_f1_matches_a_refit(systematic_noise):
    X, y, prunable, Xd, yd, Xt, yt = systematic_noise
    result = score_training_set(X, y, 2, X_dev=Xd, y_dev=yd, l2=L2, k=1)
    settings = Settings(head_l2=L2, device="cpu")
    out = leave_out_harmful(result, [X, Xd, Xt], y, yd, yt, prunable, settings)

    candidates = np.nonzero(prunable)[0]
    order = candidates[np.argsort(-result.suspicion[candidates], kind="stable")]
    dev_f1 = {}
    for share in DEFAULT_DROP_FRACTIONS:
        keep = np.ones(len(y), dtype=bool)
        keep[order[: round(share * len(candidates))]] = False
        head = fit_logistic_head(X[keep], y[keep], 2, l2=L2)
        dev_f1[share] = (macro_f1(yd, head.predict_proba(Xd).argmax(1)), keep, head)
    best = max(DEFAULT_DROP_FRACTIONS, key=lambda s: (round(dev_f1[s][0], 12), -s))
    f1, keep, head = dev_f1[best]

    assert out["silver_left_out_share"] == best
    assert out["silver_left_out"] == (~keep).sum() > 0, "this noise is worth leaving out"
    assert not (~keep & ~prunable).any(), "gold and reviewed items are never left out"
    assert out["dev_macro_f1_left_out"] == pytest.approx(f1, abs=1e-9)
    assert out["dev_macro_f1_left_out"] > dev_f1[0.0][0]
    refit = macro_f1(yt, head.predict_proba(Xt).argmax(1))
    assert out["test_macro_f1_left_out"] == pytest.approx(refit, abs=1e-9)


def test_nothing_prunable_gives_nothing(systematic_noise):
    X, y, _, Xd, yd, Xt, yt = systematic_noise
    result = score_training_set(X, y, 2, X_dev=Xd, y_dev=yd, l2=L2, k=1)
    settings = Settings(head_l2=L2, device="cpu")
    none = np.zeros(len(y), dtype=bool)
    assert leave_out_harmful(result, [X, Xd, Xt], y, yd, yt, none, settings) == {}
    assert leave_out_harmful(result, [X, Xd, Xt], y, yd, yt, None, settings) == {}
