"""Known errors injected into NER tags that are taken as the truth, for the detection benchmark.

Four kinds, each recorded as the token range it touches (the union of the true and the
corrupted span, so a reviewer who looks at either finds it):

- ``systematic``: every labelled occurrence of a few frequent surface strings relabelled to one
  other type (a gazetteer or a guideline applied wrongly), strings that occur at least
  ``min_count`` times and always with one type;
- ``type``: a random span's type changed to another at random;
- ``deleted``: a random span removed (its tokens tagged O): a missed entity;
- ``boundary``: a random span grown by one token (an O neighbour) or shrunk by one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from workers.engine.tagging import OUTSIDE, bio_spans

KINDS = ("systematic", "type", "deleted", "boundary")


@dataclass(frozen=True)
class Injected:
    """One injected error: its kind and the token range ``[start, end)`` of ``sentence``."""

    kind: str
    sentence: int
    start: int
    end: int
    surface: str


def _write(tags: list[str], start: int, end: int, typ: str) -> None:
    tags[start:end] = (
        [OUTSIDE] * (end - start)
        if typ == OUTSIDE
        else ([f"B-{typ}"] + [f"I-{typ}"] * (end - start - 1))
    )


def inject(
    words: list[list[str]],
    tags: list[list[str]],
    types: tuple[str, ...],
    *,
    seed: int,
    n_systematic: int = 3,
    min_count: int = 5,
    rates: dict[str, float] | None = None,
) -> tuple[list[list[str]], list[Injected]]:
    """Corrupted copies of ``tags`` and the errors injected (seeded). ``rates`` are shares of
    the labelled spans left after the systematic relabelling: type flips, deletions, boundary
    shifts (default 5%, 3%, 3%). Systematic targets get a type among the named ones (``types``
    minus numeric)."""
    rates = rates or {"type": 0.05, "deleted": 0.03, "boundary": 0.03}
    rng = np.random.default_rng(seed)
    out = [list(t) for t in tags]
    spans = [(i, s, e, typ) for i, t in enumerate(tags) for s, e, typ in bio_spans(t)]
    by_string: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
    for i, s, e, typ in spans:
        by_string[" ".join(words[i][s:e])].append((i, s, e, typ))
    counts = Counter({k: len(v) for k, v in by_string.items()})
    named = [t for t in types if t != "NUM"]
    eligible = [
        k
        for k, n in counts.most_common()
        if n >= min_count and len({v[3] for v in by_string[k]}) == 1 and by_string[k][0][3] in named
    ]
    chosen = [eligible[j] for j in sorted(rng.choice(len(eligible), n_systematic, replace=False))]
    injected: list[Injected] = []
    touched: set[tuple[int, int, int]] = set()
    for k in chosen:
        new = str(rng.choice([t for t in named if t != by_string[k][0][3]]))
        for i, s, e, _ in by_string[k]:
            _write(out[i], s, e, new)
            injected.append(Injected("systematic", i, s, e, k))
            touched.add((i, s, e))
    rest = [sp for sp in spans if sp[:3] not in touched]
    picks = rng.permutation(len(rest))
    start = 0
    for kind in ("type", "deleted", "boundary"):
        n = round(rates[kind] * len(rest))
        for j in picks[start : start + n]:
            i, s, e, typ = rest[j]
            region = _corrupt(kind, out[i], s, e, typ, named, rng)
            if region is not None:
                injected.append(Injected(kind, i, *region, " ".join(words[i][s:e])))
        start += n
    return out, injected


def _corrupt(
    kind: str,
    tags: list[str],
    s: int,
    e: int,
    typ: str,
    named: list[str],
    rng: np.random.Generator,
) -> tuple[int, int] | None:
    """Apply one random error to the span ``[s, e)``; the token range touched, or None when a
    boundary shift has no room (both neighbours taken and a single token)."""
    if kind == "type":
        _write(tags, s, e, str(rng.choice([t for t in (*named, "NUM") if t != typ])))
        return s, e
    if kind == "deleted":
        _write(tags, s, e, OUTSIDE)
        return s, e
    moves = []
    if s > 0 and tags[s - 1] == OUTSIDE:
        moves.append((s - 1, e))
    if e < len(tags) and tags[e] == OUTSIDE:
        moves.append((s, e + 1))
    if e - s > 1:
        moves += [(s + 1, e), (s, e - 1)]
    if not moves:
        return None
    ns, ne = moves[int(rng.integers(len(moves)))]
    _write(tags, s, e, OUTSIDE)
    _write(tags, ns, ne, typ)
    return min(s, ns), max(e, ne)
