"""Inter-annotator agreement on items labelled by more than one annotator.

Krippendorff's alpha (nominal) takes any number of annotators and missing votes, so it is the
project's figure; Cohen's kappa is given per pair of annotators on the items both labelled.
Both come from libraries (``krippendorff``, scikit-learn), imported only when asked for.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Assignment, Item, Project, User


@dataclass
class PairKappa:
    a: str
    b: str
    items: int
    kappa: float | None


@dataclass
class Agreement:
    items: int  # items with at least two votes
    annotators: int
    alpha: float | None
    pairs: list[PairKappa] = field(default_factory=list)


def _finite(value: float) -> float | None:
    """Undefined agreement (every vote the same label) comes back as NaN: report it as None."""
    value = float(value)
    return value if math.isfinite(value) else None


def _alpha(by_item: dict[int, dict[str, str]], annotators: list[str], labels: list[str]):
    import krippendorff
    import numpy as np

    index = {label: i for i, label in enumerate(labels)}
    data = np.full((len(annotators), len(by_item)), np.nan)
    for column, cast in enumerate(by_item.values()):
        for row, name in enumerate(annotators):
            if name in cast:
                data[row, column] = index[cast[name]]
    if len(np.unique(data[~np.isnan(data)])) < 2:
        return None  # one label throughout: alpha is undefined
    return _finite(
        krippendorff.alpha(
            reliability_data=data,
            level_of_measurement="nominal",
            value_domain=list(range(len(labels))),
        )
    )


def _kappa(a: list[str], b: list[str], labels: list[str]) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _finite(cohen_kappa_score(a, b, labels=labels))


def agreement(session: Session, project: Project) -> Agreement:
    rows = session.execute(
        select(Assignment.item_id, User.username, Assignment.label)
        .join(Item, Item.id == Assignment.item_id)
        .join(User, User.id == Assignment.user_id)
        .where(Item.project_id == project.id, Assignment.state == "done")
    )
    by_item: dict[int, dict[str, str]] = defaultdict(dict)
    for item_id, username, label in rows:
        if label in project.labels:
            by_item[item_id][username] = label
    shared = {i: cast for i, cast in by_item.items() if len(cast) >= 2}
    annotators = sorted({name for cast in shared.values() for name in cast})
    if not shared:
        return Agreement(items=0, annotators=len(annotators), alpha=None)
    pairs = []
    for a, b in combinations(annotators, 2):
        both = [cast for cast in shared.values() if a in cast and b in cast]
        if both:
            kappa = _kappa([c[a] for c in both], [c[b] for c in both], project.labels)
            pairs.append(PairKappa(a, b, len(both), kappa))
    return Agreement(
        items=len(shared),
        annotators=len(annotators),
        alpha=_alpha(shared, annotators, project.labels),
        pairs=pairs,
    )
