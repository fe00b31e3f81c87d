"""The pieces of ``workers.kinds.sequence_tagging.pipeline`` that need no encoder: spans to
tag ids, span F1, and evidence (on hashed token vectors of the real news sentences)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine.test_segment_influence import DATA, hashed_vectors, read_conll
from workers.engine.segment_influence import score_segments
from workers.engine.tagging import TaggedCorpus, bio_spans, tag_ids
from workers.kinds.sequence_tagging.pipeline import _evidence, span_f1, span_tag_ids, tag_names


def test_spans_become_the_bio_tags_they_were_read_from():
    _, tags = read_conll(DATA)
    types = sorted({t[2:] for sent in tags for t in sent if t != "O"})
    names = tag_names(types)
    index = {n: k for k, n in enumerate(names)}
    for sent_tags in tags:
        ids = span_tag_ids(len(sent_tags), bio_spans(sent_tags), index, 0)
        assert [names[k] for k in ids] == sent_tags


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        ([(1, 3, "GPE")], "unknown type"),
        ([(2, 5, "PERSON")], "outside"),
        ([(0, 2, "PERSON"), (1, 2, "PERSON")], "overlaps"),
    ],
)
def test_bad_spans_are_refused(spans, message):
    index = {n: k for k, n in enumerate(tag_names(["PERSON"]))}
    with pytest.raises(ValueError, match=message):
        span_tag_ids(4, spans, index, 7)


def test_span_f1_counts_exact_matches_only():
    gold = [[(0, 2, "PER"), (3, 4, "ORG")], [(1, 2, "LOC")]]
    pred = [[(0, 2, "PER"), (3, 4, "LOC")], [(0, 2, "LOC"), (4, 5, "ORG")]]
    # 1 match of 3 gold and 4 predicted spans: precision 1/4, recall 1/3, F1 = 2/7
    assert span_f1(gold, pred) == pytest.approx(2 / 7)
    assert span_f1(gold, gold) == 1.0 and span_f1([[]], [[]]) == 1.0


def test_evidence_is_the_top_k_of_the_influence_matrix_from_other_sentences():
    words, tags = read_conll(DATA)
    names = sorted({t for sent in tags for t in sent})
    train = TaggedCorpus(hashed_vectors(words[:30], 16), tag_ids(tags[:30], names))
    scores = score_segments(train, names, l2=1e-3, device="cpu")
    evidence = _evidence(scores, 2)
    M = scores.influence.influence_on(scores.segments, scores.segments)
    sentence = np.array([s.sentence for s in scores.segments])
    # hashed vectors give every occurrence of a word the same vector, so tied influences are
    # common: the values are compared, and each index must carry its value
    for t in range(len(scores.segments)):
        other = np.sort(M[t, sentence != sentence[t]])
        rows = [e for e in evidence if e[0] == t]
        expected = {"supporter": other[::-1][:2], "opposer": other[:2]}
        for role, values in expected.items():
            found = [e for e in rows if e[2] == role]
            assert [e[3] for e in found] == [1, 2]
            assert [e[4] for e in found] == pytest.approx(values, rel=1e-6, abs=1e-12)
            for _, s, _, _, value in found:
                assert sentence[s] != sentence[t]
                assert value == pytest.approx(M[t, s], rel=1e-6, abs=1e-12)
