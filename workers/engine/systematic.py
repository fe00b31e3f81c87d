"""Systematic annotation errors: segments that share a surface string and a label, judged as a
group, and Assay's default suspicion ranking that uses them.

A label applied wrongly *everywhere* ("Nike" tagged GPE in every sentence) is invisible to
per-segment scores: the model fits the many consistent copies, so each copy has a small loss, a
small self-influence and, because its gradient is small, a small influence on the dev loss.
Influence is additive, though: to first order the effect of removing a set of segments is the
sum of their influences. So the group of all segments with one surface string and one label has
a dev influence of its own, ``Σ_{g ∈ group} dev_influence(g)``, the predicted change of the gold
dev loss if the whole group's labels went, and a wrong group is harmful as a whole even when no
member is harmful enough alone. For a segment without company the group is the segment itself.

The default ranking (``default_suspicion``) puts first the segments whose label is *contradicted*
by what the same string carries elsewhere: gold dev spans of the string with other types
outnumber those with its type, or the other training segments of the string mostly carry
another label (its label is the string's minority one). A random type flip or deletion of a
common name is contradicted both ways; a systematic relabelling is contradicted by gold when
the dev set has the string. Within each of the two classes, segments are ordered by reciprocal
rank fusion (Cormack et al., 2009: sum of 1 / (60 + rank)) of two scale-free rankings that
catch different errors: the segment's own loss (a label the model cannot fit: random flips,
shifted boundaries) and its group's dev harm (a wrong label the model fits because it is
everywhere). The two scores have no common scale, which is why ranks are fused, not values.
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


def contradicted(
    segments: Sequence[Segment],
    words: Sequence[Sequence[str]],
    gold: Sequence[tuple[str, str]] = (),
) -> np.ndarray:
    """Per segment: is its label outvoted for its string, by the ``gold`` (surface, type)
    spans (other types more often than its own), or by the training segments of the string
    (other labels, ``O`` included, more often than its own)?"""
    groups = surface_groups(segments, words)
    train: dict[str, Counter] = defaultdict(Counter)
    for (string, label), members in groups.items():
        train[string][label] += len(members)
    reference: dict[str, Counter] = defaultdict(Counter)
    for string, typ in gold:
        reference[string][typ] += 1
    out = np.zeros(len(segments), dtype=bool)
    for (string, label), members in groups.items():
        for votes in (reference[string], train[string]):
            if sum(votes.values()) - votes[label] > votes[label]:
                out[members] = True
    return out


def reciprocal_rank_fusion(*scores: np.ndarray, k: int = 60) -> np.ndarray:
    """Σ 1 / (k + rank) over the rankings (rank 1 = highest score; ties by position)."""
    out = np.zeros(len(scores[0]))
    for s in scores:
        rank = np.empty(len(s))
        rank[np.argsort(-np.asarray(s), kind="stable")] = np.arange(1, len(s) + 1)
        out += 1.0 / (k + rank)
    return out


def default_suspicion(
    loss: np.ndarray, group_harm: np.ndarray, contradicted: np.ndarray
) -> np.ndarray:
    """Assay's default (module docstring): contradicted segments first, each class ordered by
    the fused ranks of ``loss`` and ``group_harm`` (fusion < 1, so classes never mix)."""
    return contradicted.astype(float) + reciprocal_rank_fusion(loss, group_harm)


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
    gold: Sequence[tuple[str, str]] = (),
    min_size: int = 2,
) -> list[Group]:
    """Groups of at least ``min_size`` segments with one surface string and one label whose
    summed ``harm`` (per segment, e.g. ``-dev_influence``) is positive, most harmful first: each
    is one action for an annotator ("37 spans 'Jordan' labelled GPE" -> PERSON).

    The suggestion is the commonest other type of the string's ``gold`` (surface, type) spans,
    else the commonest other type among the members' ``suggested`` types (a model trained on a
    consistent error tends to repeat it), else ``label`` (no change proposed).
    """
    reference: dict[str, Counter] = defaultdict(Counter)
    for string, typ in gold:
        reference[string][typ] += 1
    out = []
    for (string, label), members in surface_groups(segments, words).items():
        score = float(np.sum(harm[members]))
        if len(members) < min_size or score <= 0:
            continue
        others = Counter({t: n for t, n in reference[string].items() if t != label})
        others = others or Counter(suggested[k] for k in members if suggested[k] != label)
        out.append(
            Group(string, label, others.most_common(1)[0][0] if others else label, members, score)
        )
    return sorted(out, key=lambda g: -g.score)
