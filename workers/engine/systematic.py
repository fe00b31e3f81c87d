"""Systematic annotation errors: segments that share a surface string and a label, judged as a
group, and the default suspicion ranking that uses them.

A label applied wrongly *everywhere* ("Nike" tagged GPE in every sentence) is invisible to
per-segment scores: the model fits the many consistent copies, so each copy has a small loss, a
small self-influence and, because its gradient is small, a small influence on the dev loss.
Influence is additive, though: to first order the effect of removing a set of segments is the
sum of their influences. So the group of all segments with one surface string and one label has
a dev influence of its own, ``Σ_{g ∈ group} dev_influence(g)``, the predicted change of the gold
dev loss if the whole group's labels went, and a wrong group is harmful as a whole even when no
member is harmful enough alone. For a segment without company the group is the segment itself.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .tagging import Segment


def surface_groups(
    segments: Sequence[Segment], words: Sequence[Sequence[str]]
) -> dict[tuple[str, str], list[int]]:
    """Indices of ``segments`` by (surface string, label); the string's tokens joined by a
    space."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for k, s in enumerate(segments):
        groups[(" ".join(words[s.sentence][s.start : s.end]), s.label)].append(k)
    return dict(groups)


def group_sums(values: np.ndarray, groups: dict[tuple[str, str], list[int]]) -> np.ndarray:
    """Per segment, the sum of ``values`` over its group."""
    out = np.empty(len(values))
    for members in groups.values():
        out[members] = values[members].sum()
    return out


@dataclass
class Group:
    """Segments (``members``, indices into the scored segments) that carry ``label`` on the same
    ``surface`` string; ``suggested`` the type most members' suggestions name (another than
    ``label``), ``score`` the group's harm (higher = more suspicious)."""

    surface: str
    label: str
    suggested: str
    members: list[int]
    score: float


def systematic_groups(
    segments: Sequence[Segment],
    words: Sequence[Sequence[str]],
    suggested: Sequence[str],
    harm: np.ndarray,
    *,
    min_size: int = 2,
) -> list[Group]:
    """Groups of at least ``min_size`` segments with one surface string and one label whose
    summed ``harm`` (per segment, e.g. ``-dev_influence``) is positive, most harmful first: each
    is one action for an annotator ("37 spans 'Jordan' labelled GPE" -> PERSON).

    The suggestion is the commonest other type among the members' ``suggested`` types, or
    ``label`` when no member suggests a change.
    """
    out = []
    for (string, label), members in surface_groups(segments, words).items():
        score = float(np.sum(harm[members]))
        if len(members) < min_size or score <= 0:
            continue
        others = Counter(suggested[k] for k in members if suggested[k] != label)
        out.append(
            Group(string, label, others.most_common(1)[0][0] if others else label, members, score)
        )
    return sorted(out, key=lambda g: -g.score)
