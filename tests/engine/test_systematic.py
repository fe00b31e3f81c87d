"""Systematic groups: segments sharing a surface string and a label, judged by summed harm."""

import numpy as np

from workers.engine.systematic import group_sums, surface_groups, systematic_groups
from workers.engine.tagging import Segment

WORDS = [
    ["Jordan", "scored", "in", "Jordan"],
    ["Nike", "sued", "Jordan"],
    ["Nike", "shoes"],
]
SEGMENTS = [
    Segment(0, 0, 1, "GPE"),
    Segment(0, 3, 4, "GPE"),
    Segment(1, 0, 1, "ORG"),
    Segment(1, 2, 3, "GPE"),
    Segment(2, 0, 1, "ORG"),
]


def test_groups_are_surface_and_label_and_sums_match_a_loop():
    groups = surface_groups(SEGMENTS, WORDS)
    assert groups == {("Jordan", "GPE"): [0, 1, 3], ("Nike", "ORG"): [2, 4]}
    values = np.array([0.5, -0.2, 1.0, 0.1, 3.0])
    brute = [
        sum(
            values[j]
            for j, t in enumerate(SEGMENTS)
            if (" ".join(WORDS[t.sentence][t.start : t.end]), t.label)
            == (" ".join(WORDS[s.sentence][s.start : s.end]), s.label)
        )
        for s in SEGMENTS
    ]
    np.testing.assert_allclose(group_sums(values, groups), brute)


def test_harmful_groups_only_most_harmful_first_with_the_commonest_other_suggestion():
    suggested = ["PERSON", "GPE", "ORG", "PERSON", "ORG"]
    harm = np.array([0.5, -0.2, 1.0, 0.1, 3.0])
    found = systematic_groups(SEGMENTS, WORDS, suggested, harm)
    assert [(g.surface, g.label) for g in found] == [("Nike", "ORG"), ("Jordan", "GPE")]
    assert found[0].score == 4.0 and found[0].suggested == "ORG"  # nobody suggests a change
    assert found[1].suggested == "PERSON" and found[1].members == [0, 1, 3]
    # harmless together: left out, however harmful one member is alone
    harm[[0, 1, 3]] = [0.9, -0.5, -0.5]
    assert [g.surface for g in systematic_groups(SEGMENTS, WORDS, suggested, harm)] == ["Nike"]
    # a group smaller than min_size is not a group
    assert systematic_groups(SEGMENTS, WORDS, suggested, harm, min_size=3) == []
