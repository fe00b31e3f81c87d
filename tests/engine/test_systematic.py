"""Groups of same-string same-label segments: their summed dev influence against retraining
without the whole group, the default ranking and the one-action group fix, on the toy corpus
(tests/engine/ner_toy.py) where "Nike" is labelled LOC everywhere and the gold dev set says ORG.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine.ner_toy import TAG_NAMES, WRONG, toy_tagged
from workers.engine.segment_influence import score_segments
from workers.engine.systematic import (
    contradicted,
    default_suspicion,
    reciprocal_rank_fusion,
    surface_groups,
    systematic_groups,
)
from workers.engine.tagging import Segment, TaggedCorpus, bio_spans, tag_ids

L2 = 1e-2


@pytest.fixture(scope="module")
def scored():
    words, _, train = toy_tagged(90, seed=0)
    dev_words, labelled, dev_corpus = toy_tagged(40, seed=1)
    dev_tags = [  # the truth: Nike is an ORG
        ["B-ORG" if w == WRONG[0] else t for w, t in zip(ws, ts, strict=True)]
        for ws, ts in zip(dev_words, labelled, strict=True)
    ]
    dev = TaggedCorpus(dev_corpus.vectors, tag_ids(dev_tags, TAG_NAMES))
    sc = score_segments(
        train, TAG_NAMES, l2=L2, dev=dev, device="cpu", words=words, dev_words=dev_words
    )
    gold = [
        (" ".join(w[s:e]), t)
        for w, ts in zip(dev_words, dev_tags, strict=True)
        for s, e, t in bio_spans(ts)
    ]
    return words, dev, sc, gold


def test_group_dev_influence_matches_retraining_without_the_group(scored):
    words, dev, sc, _ = scored
    groups = [m for m in surface_groups(sc.segments, words).values() if len(m) >= 3]
    assert len(groups) >= 6
    base = sc.influence.head.token_losses(dev).sum()
    predicted, actual = [], []
    for members in groups:
        predicted.append(sc.group_dev_influence[members[0]])
        np.testing.assert_allclose(sc.group_dev_influence[members], predicted[-1])
        head = sc.influence.retrain_without([sc.segments[k] for k in members])
        actual.append(head.token_losses(dev).sum() - base)
    r = np.corrcoef(predicted, actual)[0, 1]
    print(f"group removal: Pearson {r:.3f} over {len(groups)} groups")
    assert r >= 0.9
    assert np.all(np.sign(predicted) == np.sign(actual))


def test_default_ranks_the_systematic_error_first_and_groups_it(scored):
    words, _, sc, gold = scored
    nike = np.array([words[s.sentence][s.start : s.end] == [WRONG[0]] for s in sc.segments])
    assert sc.rank[nike].max() == nike.sum()  # every Nike span above every other segment
    groups = systematic_groups(sc.segments, words, sc.suggested, -sc.dev_influence, gold=gold)
    top = groups[0]
    assert (top.surface, top.label, top.suggested) == (WRONG[0], WRONG[1], "ORG")
    assert sorted(top.members) == sorted(np.nonzero(nike)[0].tolist())
    assert all(g.score > 0 for g in groups)
    assert [g.score for g in groups] == sorted((g.score for g in groups), reverse=True)


def test_contradiction_counts_gold_and_training_votes():
    words = [["Jordan", "met", "Jordan"], ["Jordan", "in", "Jordan"], ["Acme"]]
    segments = [
        Segment(0, 0, 1, "PER"),
        Segment(0, 2, 3, "PER"),
        Segment(1, 0, 1, "PER"),
        Segment(1, 2, 3, "LOC"),  # outvoted 3:1 by the training segments of "Jordan"
        Segment(2, 0, 1, "LOC"),
    ]
    assert contradicted(segments, words).tolist() == [False, False, False, True, False]
    gold = [("Acme", "ORG"), ("Jordan", "LOC"), ("Jordan", "LOC"), ("Jordan", "PER")]
    assert contradicted(segments, words, gold).tolist() == [True, True, True, True, True]
    assert contradicted(segments, words, gold[:1] + gold[3:]).tolist()[:3] == [False] * 3


def test_default_puts_contradicted_first_then_fuses_ranks():
    loss = np.array([5.0, 1.0, 3.0, 0.5])
    harm = np.array([0.0, 2.0, 1.0, 3.0])
    fused = reciprocal_rank_fusion(loss, harm, k=60)
    np.testing.assert_allclose(
        fused, [1 / 61 + 1 / 64, 1 / 63 + 1 / 62, 1 / 62 + 1 / 63, 1 / 64 + 1 / 61]
    )
    flag = np.array([False, False, False, True])
    order = np.argsort(-default_suspicion(loss, harm, flag), kind="stable")
    assert order[0] == 3
