"""How much two rankings of the same items agree, so an admin can compare estimators."""

from __future__ import annotations

from itertools import combinations

import numpy as np
from scipy.stats import spearmanr


def top_items(suspicion: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of the top ``fraction`` of the items (at least one), most suspicious first;
    ties keep input order."""
    count = max(1, round(fraction * len(suspicion)))
    return np.argsort(-np.asarray(suspicion), kind="stable")[:count]


def top_set(suspicion: np.ndarray, fraction: float) -> set[int]:
    return set(top_items(suspicion, fraction).tolist())


def ranking_agreement(
    rankings: dict[str, np.ndarray], top_fraction: float = 0.1
) -> list[dict[str, float | str]]:
    """Per pair of rankings: the share of their top ``top_fraction`` they have in common
    (|A ∩ B| / |A|) and the Spearman correlation of the whole ranking."""
    tops = {name: top_set(s, top_fraction) for name, s in rankings.items()}
    out: list[dict[str, float | str]] = []
    for a, b in combinations(rankings, 2):
        out.append(
            {
                "a": a,
                "b": b,
                "top_overlap": len(tops[a] & tops[b]) / len(tops[a]),
                "spearman": float(spearmanr(rankings[a], rankings[b])[0]),
            }
        )
    return out


def comparison_rankings(
    name: str,
    suspicion: np.ndarray,
    self_influence: np.ndarray,
    probs: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    with_cleanlab: bool = True,
    cleanlab: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The project's ranking beside the baselines it is judged against, for the dashboard
    (``cleanlab``: its suspicion when the run already computed it)."""
    from workers.engine.baselines import cleanlab_scores, loss_scores, margin_scores

    rankings = {
        name: suspicion,
        "self_influence": self_influence,
        "loss": loss_scores(probs, y),
        "margin": margin_scores(probs, y),
    }
    if with_cleanlab:
        found = cleanlab_scores(X, y, n_classes, seed=seed) if cleanlab is None else cleanlab
        rankings["cleanlab"] = found
    return rankings
