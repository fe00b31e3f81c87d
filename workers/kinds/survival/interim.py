"""INTERIM stand-in for ``workers.engine.cox.score_survival`` (being written by the engine
helper): the same outputs from the engine's parts, so the app side can be tested end to end.
Replace the import in ``pipeline`` and delete this file once the engine's lands."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from workers.engine.cox import SurvivalData, concordance_index, cox_loss, fit_cox, residuals
from workers.engine.vif import VIF


@dataclass
class Scores:
    theta: np.ndarray
    risk: np.ndarray
    expected_events: np.ndarray
    martingale: np.ndarray
    deviance: np.ndarray
    influence: np.ndarray | None
    self_influence: np.ndarray
    suspicion: np.ndarray
    rank: np.ndarray
    estimator: str
    metrics: dict
    evidence: list


def score_survival(
    x,
    duration,
    event,
    *,
    dev=None,
    penalty=0.01,
    ties="breslow",
    evidence_k=3,
    evidence_targets=50,
    device=None,
):
    data = SurvivalData.build(x, duration, event, device)
    fit = fit_cox(data, penalty=penalty, ties=ties)
    vif = VIF.fit(fit.objective(), fit.theta)
    res = residuals(fit)
    order = data.order.cpu().numpy()

    def unsort(values: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        out[order] = values
        return out

    self_inf = unsort(vif.self_influence())
    influence = None
    metrics = {"c_index_train": concordance_index(duration, res.risk, event)}
    if dev is not None:
        dev_data = SurvivalData.build(*dev, device)
        ones = torch.ones(dev_data.n, dtype=torch.float64, device=dev_data.x.device)
        loss = cox_loss(dev_data, 0.0, ties)
        influence = unsort(vif.influence(lambda theta: loss(theta, ones)))
        dev_risk = np.asarray(dev[0]) @ fit.theta.cpu().numpy()
        metrics["c_index_dev"] = concordance_index(dev[1], dev_risk, dev[2])
    suspicion = -influence if influence is not None else self_inf
    rank = np.empty(len(suspicion), dtype=int)
    rank[np.argsort(-suspicion, kind="stable")] = np.arange(1, len(suspicion) + 1)
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    targets = np.argsort(-suspicion, kind="stable")[:evidence_targets]
    evidence = []
    for target, row in zip(targets, vif.pairwise([int(position[t]) for t in targets]), strict=True):
        row = unsort(row)
        row[target] = 0.0
        for role, idx in (("supporter", np.argsort(-row)), ("opposer", np.argsort(row))):
            picked = [
                j for j in idx[:evidence_k] if (row[j] > 0) == (role == "supporter") and row[j]
            ]
            evidence += [
                (int(target), int(j), role, r, float(row[j])) for r, j in enumerate(picked, 1)
            ]
    return Scores(
        fit.theta.cpu().numpy(),
        res.risk,
        res.expected,
        res.martingale,
        res.deviance,
        influence,
        self_inf,
        suspicion,
        rank,
        "vif_dev" if influence is not None else "vif_self",
        metrics,
        evidence,
    )
