"""Influence estimates against brute-force leave-one-out retraining on real embedded data.

300 Rotten Tomatoes snippets with VADER silver labels train the head; 200 with gold labels are
the dev set. For ~50 items (the largest predicted |dev influence| plus random ones) the head is
retrained without the item and the actual change of the mean dev loss and of the item's own
loss is compared with the influence estimates.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from workers.engine import ExactHeadInfluence
from workers.engine.head import fit_logistic_head

L2 = 1e-3


def test_influence_predicts_leave_one_out(real_subset):
    X, y = real_subset["X_train"], real_subset["y_train"]
    Xd, yd = real_subset["X_dev"], real_subset["y_dev"]
    n = len(y)
    head = fit_logistic_head(X, y, 2, l2=L2)
    inf = ExactHeadInfluence(head, X, y, l2=L2)
    dev_pred = inf.dev_influence(Xd, yd)
    self_pred = inf.self_influence()

    rng = np.random.default_rng(1)
    strongest = np.argsort(-np.abs(dev_pred))[:25]
    others = rng.choice(np.setdiff1d(np.arange(n), strongest), 25, replace=False)
    items = np.concatenate([strongest, others])

    base_dev = head.log_loss(Xd, yd).mean()
    base_own = head.log_loss(X, y)
    dev_actual, self_actual = [], []
    for j in items:
        keep = np.arange(n) != j
        h = fit_logistic_head(X[keep], y[keep], 2, l2=L2, init=head)
        dev_actual.append(h.log_loss(Xd, yd).mean() - base_dev)
        self_actual.append(h.log_loss(X[j : j + 1], y[j : j + 1])[0] - base_own[j])
    dev_actual, self_actual = np.array(dev_actual), np.array(self_actual)

    rho_dev = spearmanr(dev_pred[items], dev_actual)[0]
    rho_self = spearmanr(self_pred[items], self_actual)[0]
    print(f"\nl2={L2:g} items={len(items)} spearman dev={rho_dev:.4f} self={rho_self:.4f}")
    assert rho_dev >= 0.9
    assert rho_self >= 0.9
    # The sign convention: the strongest predicted effects go the predicted way.
    top = np.argsort(-np.abs(dev_pred[items]))[:25]
    assert (np.sign(dev_pred[items][top]) == np.sign(dev_actual[top])).all()
    assert (self_actual > 0).all()
