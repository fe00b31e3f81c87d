"""InfFeed suggestions in a scoring run, checked against a brute-force vote."""

import numpy as np

from workers.engine.estimators import ExactHeadInfluence
from workers.engine.suggestions import inffeed_suggestions


def test_suggestions_follow_the_dev_chosen_vote(real_subset):
    X, y = real_subset["X_train"], real_subset["y_train"]
    Xd, yd = real_subset["X_dev"], real_subset["y_dev"]
    inf = ExactHeadInfluence.fit(X, y, 2, l2=1e-3)
    report = inffeed_suggestions(inf, X, y, Xd[:100], yd[:100], Xd[100:], yd[100:])
    print(
        f"\nchosen {report.config}; dev F1 {report.dev_f1_before:.3f} -> "
        f"{report.dev_f1_after:.3f}; held-out F1 {report.test_f1_before:.3f} -> "
        f"{report.test_f1_after:.3f}"
    )
    assert report.dev_f1_after >= report.dev_f1_before
    train = report.train
    assert not (train.influencer_idx == np.arange(len(y))[:, None]).any(), "no self-votes"

    # brute force: the full influence matrix at the predicted labels, own column masked
    probs = inf.model.predict_proba(X)
    predicted = probs.argmax(axis=1)
    full = np.concatenate([block for _, block in inf.influence(X, predicted)])
    np.fill_diagonal(full, -np.inf)
    k, cfg = report.config.k, report.config
    for t in range(len(y)):
        if probs[t].max() >= cfg.threshold:
            assert train.label[t] == predicted[t]
            continue
        top = np.argsort(-full[t], kind="stable")[:k]
        w = np.clip(full[t, top], 0, None) if cfg.weighting == "influence" else (full[t, top] > 0)
        votes = np.bincount(y[top], weights=w.astype(float), minlength=2)
        expected = predicted[t] if votes[predicted[t]] >= votes.max() else votes.argmax()
        assert train.label[t] == expected
