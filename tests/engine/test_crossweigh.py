"""CrossWeigh's entity-disjoint folds, checked by brute force, and its ranking of a consistently
mislabelled name (tests/engine/ner_toy.py) above the clean ones, which sentence folds miss."""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine.ner_toy import TAG_NAMES, WRONG, toy_tagged
from workers.engine.crossweigh import crossweigh_scores, entity_disjoint_folds, surface
from workers.engine.tagging import candidate_segments
from workers.engine.tagging_baselines import cleanlab_segment_scores, out_of_fold_marginals

L2 = 1e-3


@pytest.fixture(scope="module")
def toy():
    words, tags, corpus = toy_tagged()
    return words, corpus, candidate_segments(tags, tags)


def contains(sentence: list[str], string: tuple[str, ...]) -> bool:
    n = len(string)
    return any(tuple(sentence[j : j + n]) == string for j in range(len(sentence) - n + 1))


def test_folds_are_entity_disjoint(toy):
    words, _, segments = toy
    strings = [surface(words, s) for s in segments]
    for seed in (0, 1):
        folds = entity_disjoint_folds(words, strings, 4, seed)
        dealt = [s for f in folds for s in f.strings]
        assert sorted(dealt) == sorted(set(strings))  # every string in exactly one fold
        for fold in folds:
            held = set(fold.held_out.tolist())
            for i, sent in enumerate(words):
                hit = any(contains(sent, s) for s in fold.strings)
                assert hit == (i in held), (seed, i)  # trained on exactly the others
    assert [f.strings for f in entity_disjoint_folds(words, strings, 4, 1)] != [
        f.strings for f in entity_disjoint_folds(words, strings, 4, 0)
    ]


def test_a_consistently_mislabelled_name_ranks_above_clean_ones(toy):
    words, corpus, segments = toy
    wrong = np.array([surface(words, s) == (WRONG[0],) for s in segments])
    assert wrong.sum() >= 5 and all(segments[k].label == WRONG[1] for k in np.nonzero(wrong)[0])
    cw = crossweigh_scores(corpus, words, segments, TAG_NAMES, l2=L2, folds=4, runs=2)
    assert cw.runs == 2
    assert np.all(cw.disagreement[wrong] == 1.0)
    assert cw.suspicion[wrong].min() > cw.suspicion[~wrong].max()
    # disagreement steps of 1/t are never crossed by the tie-break
    order = np.lexsort((1 - cw.label_marginal, cw.disagreement))
    np.testing.assert_array_equal(np.argsort(cw.suspicion, kind="stable"), order)

    # sentence folds: the other folds hold the other "Nike" spans, all labelled LOC
    probs = out_of_fold_marginals(corpus, len(TAG_NAMES), l2=L2, folds=4)
    cleanlab = cleanlab_segment_scores(corpus, segments, probs)
    assert cleanlab[wrong].min() < np.quantile(cleanlab[~wrong], 0.9)
