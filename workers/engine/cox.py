"""Linear Cox proportional hazards with an L2 penalty, as a weighted objective for VIF.

L(theta; w) = [sum over events k of w_k (log sum_{j in R_k} w_j exp(x_j.theta) - x_k.theta)]
/ sum(w) + penalty / 2 * |theta|^2, with R_k the records still at risk at k's time. A weight of
0 removes a record from the events and from every risk set, so ``L(theta; 1 - e_i)`` is exactly
the objective without record i. With covariates standardised (ddof=1) this is lifelines'
CoxPHFitter objective divided by the number of records, with lifelines' ``penalizer`` equal to
``penalty`` (lifelines penalises ``n * penalizer / 2 * |beta|^2`` on its standardised
coefficients).

Ties: Breslow (default; has a closed form for the removal gradients) or Efron.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor
from torch.func import grad, hessian

from workers.engine._device import resolve_device, to_tensor
from workers.engine.scoring import rank_descending
from workers.engine.systematic import reciprocal_rank_fusion
from workers.engine.vif import VIF, Objective, UnitLoss

SUPPORTER, OPPOSER = "supporter", "opposer"

Ties = Literal["breslow", "efron"]
TIES: tuple[Ties, ...] = ("breslow", "efron")


@dataclass(frozen=True)
class SurvivalData:
    """Records sorted by descending duration (risk sets are then prefixes), with ``order`` to
    map back: ``x[q]`` is the input row ``order[q]``. ``end[q]`` / ``start[q]`` are the last /
    first sorted positions sharing q's duration (the tie group); ``events`` the sorted positions
    of the observed events, ascending (indexed once here, not at every evaluation)."""

    x: Tensor  # (n, p) float64
    duration: Tensor  # (n,)
    event: Tensor  # (n,) float64, 1 = event observed, 0 = censored
    order: Tensor  # (n,) long
    start: Tensor  # (n,) long
    end: Tensor  # (n,) long
    events: Tensor  # (events,) long

    @classmethod
    def build(
        cls,
        x: ArrayLike,
        duration: ArrayLike,
        event: ArrayLike,
        device: str | torch.device | None = None,
    ) -> SurvivalData:
        dev = resolve_device(device)
        t = np.asarray(duration, dtype=np.float64)
        x = np.asarray(x, dtype=np.float64).reshape(len(t), -1)
        e = np.asarray(event, dtype=np.float64)
        if not np.isin(e, (0.0, 1.0)).all():
            raise ValueError("event must be 0 (censored) or 1 (event observed)")
        order = np.argsort(-t, kind="stable")
        ts = t[order]
        first = np.r_[True, ts[1:] != ts[:-1]]
        group = np.cumsum(first) - 1
        starts = np.flatnonzero(first)
        ends = np.r_[starts[1:] - 1, len(t) - 1]

        def tensor(a: np.ndarray, dtype: torch.dtype) -> Tensor:
            return to_tensor(a, dtype, dev)

        return cls(
            tensor(x[order], torch.float64),
            tensor(ts, torch.float64),
            tensor(e[order], torch.float64),
            tensor(order, torch.long),
            tensor(starts[group], torch.long),
            tensor(ends[group], torch.long),
            tensor(np.flatnonzero(e[order]), torch.long),
        )

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    def unsort(self, values: Tensor) -> np.ndarray:
        """Values per sorted record -> numpy in the input's row order."""
        out = torch.empty_like(values)
        out[self.order] = values
        return out.cpu().numpy()


def _segment_sum(cum: Tensor, start: Tensor, end: Tensor) -> Tensor:
    """Sum over each tie group from a cumulative sum along the sorted records."""
    before = torch.where(start > 0, cum[(start - 1).clamp_min(0)], torch.zeros_like(cum[0]))
    return cum[end] - before


def _log_risk(data: SurvivalData, s: Tensor, w: Tensor, ties: Ties) -> Tensor:
    """Per sorted record, the log of its event term's risk-set sum (Efron: minus the share of
    the tied events already counted, l/d of their sum for the l-th kept event of d)."""
    m = s.max()
    r = w * torch.exp(s - m)
    risk = torch.cumsum(r, 0)[data.end]
    if ties == "efron":
        we = w * data.event
        tied = _segment_sum(torch.cumsum(r * data.event, 0), data.start, data.end)
        kept = torch.cumsum(we, 0)
        d = _segment_sum(kept, data.start, data.end)
        before = kept - we - torch.where(data.start > 0, kept[(data.start - 1).clamp_min(0)], 0.0)
        risk = risk - before / d.clamp_min(1.0) * tied
    tiny = torch.finfo(s.dtype).tiny  # an empty risk set only occurs for a removed record
    return torch.log(risk.clamp_min(tiny)) + m


def cox_loss(data: SurvivalData, penalty: float, ties: Ties = "breslow"):
    """The weighted objective (theta, w) -> scalar, w in the sorted order of ``data``."""
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, not {ties!r}")

    def loss(theta: Tensor, w: Tensor) -> Tensor:
        s = data.x @ theta
        terms = w * data.event * (_log_risk(data, s, w, ties) - s)
        return terms.sum() / w.sum() + 0.5 * penalty * (theta * theta).sum()

    return loss


@dataclass(frozen=True)
class RiskSets:
    """Per sorted record at unit weights, the sums VIF's closed forms share: r = exp(s - max
    s), S0 of its risk set, the set's r-weighted covariate mean xbar and c, the sum of 1 / S0_k
    over the events k whose risk set holds the record."""

    r: Tensor
    s0: Tensor
    xbar: Tensor
    c: Tensor

    @classmethod
    def at(cls, data: SurvivalData, theta: Tensor) -> RiskSets:
        s = data.x @ theta
        r = torch.exp(s - s.max())
        s0 = torch.cumsum(r, 0)[data.end]
        xbar = torch.cumsum(r[:, None] * data.x, 0)[data.end] / s0[:, None]
        c = torch.flip(torch.cumsum(torch.flip(data.event / s0, (0,)), 0), (0,))[data.start]
        return cls(r, s0, xbar, c)


class LastRiskSets:
    """The risk sets at the last theta asked for: VIF asks for the removal gradients, the
    Hessian and the curvature factors at one theta, and one pass serves all three."""

    def __init__(self, data: SurvivalData) -> None:
        self.data = data
        self._theta: Tensor | None = None
        self._sets: RiskSets | None = None

    def __call__(self, theta: Tensor) -> RiskSets:
        if self._sets is None or not torch.equal(self._theta, theta):
            self._theta, self._sets = theta, RiskSets.at(self.data, theta)
        return self._sets


def breslow_removal_gradients(data: SurvivalData, sets: RiskSets, *, chunk: int = 512) -> Tensor:
    """Closed form of ``grad L(all) - grad L(all without i)`` for Breslow ties (unit weights).

    With A = sum_k e_k (xbar_k - x_k) (xbar_k the risk set's exp(s)-weighted mean of x),
    grad L = A / n + penalty * theta and without i: A_-i = A - e_i (xbar_i - x_i) +
    sum over events k != i whose risk set holds i of r_i (xbar_k - x_i) / (S0_k - r_i). The
    last sum is an (n, events) masked matrix product, ``chunk`` rows at a time."""
    n = data.n
    r, s0, xbar = sets.r, sets.s0, sets.xbar
    a_terms = data.event[:, None] * (xbar - data.x)
    a = a_terms.sum(0)
    events = data.events
    s0_e, end_e, xbar_e = s0[events], data.end[events], xbar[events]
    rows = []
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        i = torch.arange(lo, hi, device=r.device)[:, None]
        # i is in k's risk set when its sorted position <= k's tie-group end; ends ascend with
        # the events, so the events before ``first`` cannot hold any row of this chunk
        first = int(torch.searchsorted(end_e, lo)) if lo else 0
        ri = r[lo:hi, None]
        m = (s0_e[first:] - ri).reciprocal_().mul_(ri).masked_fill_(i > end_e[first:], 0.0)
        own = torch.nonzero((events >= lo) & (events < hi)).flatten()  # k = i: in a_terms
        m[events[own] - lo, own - first] = 0.0
        a_minus = a - a_terms[lo:hi] + m @ xbar_e[first:] - m.sum(1, keepdim=True) * data.x[lo:hi]
        rows.append(a / n - a_minus / (n - 1))
    return torch.cat(rows)


def breslow_hessian(data: SurvivalData, sets: RiskSets, penalty: float) -> Tensor:
    """The Breslow objective's Hessian at unit weights (``breslow_derivatives``' formula)."""
    x, rc = data.x, sets.r * sets.c
    xbar_e = sets.xbar[data.events]
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    return (x.T @ (rc[:, None] * x) - xbar_e.T @ xbar_e) / data.n + penalty * eye


def removal_curvature(data: SurvivalData, sets: RiskSets) -> Tensor:
    """(n, p) rows u_i with ``H_-i ~ H - u_i u_i^T``: record i's own share of the Hessian.

    i enters every risk set R_k that holds it with the weight r_i / S0_k, adding r_i / S0_k
    (x_i - xbar_k)(x_i - xbar_k)^T to the Hessian; with xbar_k taken at i's own time, the sum
    is r_i c_i (x_i - xbar_i)(x_i - xbar_i)^T / n. Rank one, so VIF corrects each record's
    step by Sherman-Morrison (any ties: the tie correction is a second-order change of a
    share that is small where ties are few)."""
    return torch.sqrt(sets.r * sets.c / data.n).unsqueeze(1) * (data.x - sets.xbar)


Derivatives = Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
"""(theta, weights) -> (objective, gradient, Hessian)."""


def breslow_derivatives(data: SurvivalData, penalty: float) -> Derivatives:
    """The Breslow objective's value, gradient and Hessian in closed form, any weights.

    Swapping the sums over events k and their risk sets, sum_k we_k xbar_k = X^T (r c) and
    sum_k we_k S2_k / S0_k = X^T diag(r c) X with c_j = sum over events k whose risk set holds
    j of we_k / S0_k (a reverse cumulative sum): O(n p^2), no (n, p, p) tensor."""
    x = data.x

    def derivatives(theta: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        s = x @ theta
        m = s.max()
        r = w * torch.exp(s - m)
        s0 = torch.cumsum(r, 0)[data.end].clamp_min(torch.finfo(s.dtype).tiny)
        xbar = torch.cumsum(r[:, None] * x, 0)[data.end] / s0[:, None]
        we = w * data.event
        total = w.sum()
        value = (we * (torch.log(s0) + m - s)).sum() / total
        c = torch.flip(torch.cumsum(torch.flip(we / s0, (0,)), 0), (0,))[data.start]
        rc = r * c
        g = (x.T @ (rc - we)) / total
        h = (x.T @ (rc[:, None] * x) - (we[:, None] * xbar).T @ xbar) / total
        eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        return (
            value + 0.5 * penalty * (theta * theta).sum(),
            g + penalty * theta,
            h + penalty * eye,
        )

    return derivatives


def autodiff_derivatives(loss: UnitLoss) -> Derivatives:
    """Value, gradient and Hessian of any weighted objective by torch.func (Efron ties)."""
    g_fn, h_fn = grad(loss), hessian(loss)

    def derivatives(theta: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return loss(theta, w), g_fn(theta, w), h_fn(theta, w)

    return derivatives


def derivatives_for(data: SurvivalData, penalty: float, ties: Ties) -> Derivatives:
    if ties == "breslow":
        return breslow_derivatives(data, penalty)
    return autodiff_derivatives(cox_loss(data, penalty, ties))


@dataclass(frozen=True)
class CoxFit:
    """A fitted model: the data (sorted), coefficients and the objective VIF needs."""

    data: SurvivalData
    theta: Tensor
    penalty: float
    ties: Ties
    iterations: int

    def objective(self) -> Objective:
        """Breslow brings its closed-form removal gradients and Hessian, from one pass over
        the risk sets; Efron relies on torch.func (vmap over removal masks). Both carry the
        records' curvature factors."""
        data, penalty = self.data, self.penalty
        loss = cox_loss(data, penalty, self.ties)
        sets = LastRiskSets(data)

        def curvature(theta: Tensor) -> Tensor:
            return removal_curvature(data, sets(theta))

        if self.ties != "breslow":
            return Objective(loss, data.n, removal_curvature=curvature)
        return Objective(
            loss,
            data.n,
            removal_gradients=lambda theta: breslow_removal_gradients(data, sets(theta)),
            hessian=lambda theta: breslow_hessian(data, sets(theta), penalty),
            removal_curvature=curvature,
        )


FULL_STEP = 1e-8


def newton(
    derivatives: Derivatives,
    theta0: Tensor,
    w: Tensor,
    *,
    tol: float = 1e-12,
    max_iter: int = 100,
) -> tuple[Tensor, int]:
    """Newton's method with step halving on a smooth convex objective; stops when the largest
    gradient entry is below ``tol`` or the Newton decrement g^T H^-1 g below ``tol``^2. Near the
    optimum (decrement < ``FULL_STEP``) the full step is taken: the objective's change is then
    below float64's resolution, so comparing objectives would reject good steps."""
    theta = theta0.detach().clone()
    value, g, h = derivatives(theta, w)
    for it in range(1, max_iter + 1):
        step = torch.linalg.solve(h, g)
        decrement = float(g @ step)
        if float(g.abs().max()) < tol or decrement < tol * tol:
            return theta, it - 1
        size = 1.0
        new, g_new, h_new = derivatives(theta - step, w)
        while decrement > FULL_STEP and not new <= value:
            size /= 2
            if size < 1e-10:
                return theta, it
            new, g_new, h_new = derivatives(theta - size * step, w)
        theta, value, g, h = theta - size * step, new, g_new, h_new
    return theta, max_iter


def fit_cox(
    data: SurvivalData,
    *,
    penalty: float = 0.01,
    ties: Ties = "breslow",
    tol: float = 1e-12,
    weights: Tensor | None = None,
) -> CoxFit:
    """Coefficients by Newton's method from zero (``weights``: a refit without some records,
    in the sorted order of ``data``, as brute-force leave-one-out does)."""
    dev = data.x.device
    w = torch.ones(data.n, dtype=torch.float64, device=dev) if weights is None else weights.to(dev)
    theta0 = torch.zeros(data.x.shape[1], dtype=torch.float64, device=dev)
    theta, iters = newton(derivatives_for(data, penalty, ties), theta0, w, tol=tol)
    return CoxFit(data, theta, penalty, ties, iters)


def baseline_cumulative_hazard(fit: CoxFit) -> Tensor:
    """Breslow's estimator at each sorted record's own time: sum over event times u <= t of
    d_u / sum_{j at risk at u} exp(x_j.theta)."""
    data = fit.data
    s = data.x @ fit.theta
    m = s.max()
    s0 = torch.cumsum(torch.exp(s - m), 0)[data.end]
    d = _segment_sum(torch.cumsum(data.event, 0), data.start, data.end)
    first = data.start == torch.arange(data.n, device=s.device)
    jumps = torch.where(first & (d > 0), d / s0, torch.zeros_like(s0))
    # ascending time = descending position: the hazard at q sums jumps at positions >= start(q)
    from_end = torch.flip(torch.cumsum(torch.flip(jumps, (0,)), 0), (0,))
    return from_end[data.start] * torch.exp(-m)


@dataclass(frozen=True)
class Residuals:
    """Per record (input order): risk x.theta, expected events by its own time, martingale
    (event - expected) and deviance residuals."""

    risk: np.ndarray
    expected: np.ndarray
    martingale: np.ndarray
    deviance: np.ndarray


def residuals(fit: CoxFit) -> Residuals:
    data = fit.data
    s = data.x @ fit.theta
    expected = baseline_cumulative_hazard(fit) * torch.exp(s)
    mart = data.event - expected
    log_term = torch.where(
        data.event > 0, torch.log((data.event - mart).clamp_min(1e-300)), torch.zeros_like(mart)
    )
    dev = torch.sign(mart) * torch.sqrt((-2 * (mart + data.event * log_term)).clamp_min(0))
    return Residuals(data.unsort(s), data.unsort(expected), data.unsort(mart), data.unsort(dev))


def concordance_index(
    duration: ArrayLike, risk: ArrayLike, event: ArrayLike, *, chunk: int = 2048
) -> float:
    """Harrell's C: among pairs where the earlier record had the event (or tied times with one
    event, one censored: the censored one lived at least as long), the share where the earlier
    record has the higher risk; equal risks count half."""
    t = np.asarray(duration, dtype=np.float64)
    r = np.asarray(risk, dtype=np.float64)
    e = np.asarray(event, dtype=np.float64) > 0
    good = ties = comparable = 0.0
    events = np.flatnonzero(e)
    for lo in range(0, len(events), chunk):
        i = events[lo : lo + chunk]
        pair = (t[None, :] > t[i, None]) | ((t[None, :] == t[i, None]) & ~e[None, :])
        comparable += pair.sum()
        good += (pair & (r[i, None] > r[None, :])).sum()
        ties += (pair & (r[i, None] == r[None, :])).sum()
    return float((good + 0.5 * ties) / comparable) if comparable else float("nan")


class SurvivalEstimator(StrEnum):
    """Suspicion orderings of training records (higher = inspect first)."""

    DEV_HARM = "vif_dev_harm"  # -influence on the gold dev loss
    SELF_INFLUENCE = "vif_self_influence"
    DEVIANCE = "deviance_residual"  # the baseline: |deviance residual|
    MARTINGALE = "martingale_residual"  # |martingale residual|
    HARM_DEVIANCE = "vif_dev_harm+deviance"  # reciprocal-rank fusion of the two
    SELF_DEVIANCE = "vif_self_influence+deviance"
    SELF_MARTINGALE = "vif_self_influence+martingale"
    HARM_MARTINGALE = "vif_dev_harm+martingale"

    @property
    def needs_dev(self) -> bool:
        return self.value.startswith("vif_dev_harm")


# bench/vif_survival.py: the best mean share of injected outcome errors found at 10% inspected
# over rossi and gbsg2 on the 15 seeds seen so far (0-4, where |deviance residual| led, then
# 100-109); reported on fresh seeds 200-219. Needs no gold dev set.
DEFAULT_ESTIMATOR = SurvivalEstimator.SELF_DEVIANCE


def suspicion_scores(
    influence: np.ndarray | None, self_influence: np.ndarray, res: Residuals
) -> dict[SurvivalEstimator, np.ndarray]:
    """Every estimator's suspicion (those needing a dev set only when there is one)."""
    harm = None if influence is None else -np.asarray(influence)
    dev, mart = np.abs(res.deviance), np.abs(res.martingale)
    out = {
        SurvivalEstimator.SELF_INFLUENCE: np.asarray(self_influence),
        SurvivalEstimator.DEVIANCE: dev,
        SurvivalEstimator.MARTINGALE: mart,
        SurvivalEstimator.SELF_DEVIANCE: reciprocal_rank_fusion(self_influence, dev),
        SurvivalEstimator.SELF_MARTINGALE: reciprocal_rank_fusion(self_influence, mart),
    }
    if harm is not None:
        out[SurvivalEstimator.DEV_HARM] = harm
        out[SurvivalEstimator.HARM_DEVIANCE] = reciprocal_rank_fusion(harm, dev)
        out[SurvivalEstimator.HARM_MARTINGALE] = reciprocal_rank_fusion(harm, mart)
    return out


@dataclass(frozen=True)
class SurvivalScores:
    """Per training record (input order) and the fit's summary."""

    theta: np.ndarray
    risk: np.ndarray  # x.theta
    expected_events: np.ndarray
    martingale: np.ndarray
    deviance: np.ndarray
    influence: np.ndarray | None  # predicted dev-loss change without the record (< 0: harmful)
    self_influence: np.ndarray
    suspicion: np.ndarray  # higher = more suspicious
    rank: np.ndarray  # 1 = most suspicious
    estimator: SurvivalEstimator
    metrics: dict[str, float | int]
    # (target record, evidence record, role, rank 1.., value): the target's own term's
    # predicted change without the evidence record (VIF.pairwise; > 0: supporter)
    evidence: list[tuple[int, int, str, int, float]]


def _evidence(
    vif: VIF, data: SurvivalData, targets: np.ndarray, k: int
) -> list[tuple[int, int, str, int, float]]:
    """Top k supporters (largest positive) and opposers (most negative) of each target record,
    itself excluded; records are input rows."""
    sorted_pos = torch.empty_like(data.order)
    sorted_pos[data.order] = torch.arange(data.n, device=data.order.device)
    pos = sorted_pos.cpu().numpy()
    order = data.order.cpu().numpy()
    values = vif.pairwise(pos[targets]) if len(targets) else np.zeros((0, data.n))
    out = []
    for t, row in zip(targets, values, strict=True):
        row[pos[t]] = 0.0  # not its own evidence
        for role, sign in ((SUPPORTER, 1.0), (OPPOSER, -1.0)):
            picked = [j for j in np.argsort(-sign * row, kind="stable")[:k] if sign * row[j] > 0]
            out += [
                (int(t), int(order[j]), role, r + 1, float(row[j])) for r, j in enumerate(picked)
            ]
    return out


def score_survival(
    x: ArrayLike,
    duration: ArrayLike,
    event: ArrayLike,
    *,
    dev: tuple[ArrayLike, ArrayLike, ArrayLike] | None = None,
    penalty: float = 0.01,
    ties: Ties = "breslow",
    solver: str = "auto",
    estimator: SurvivalEstimator | None = None,
    evidence_k: int = 5,
    top_evidence_rows: int = 50,
    device: str | torch.device | None = None,
) -> SurvivalScores:
    """Fit the Cox model on the training records and score each one: VIF on the gold dev
    records' mean negative partial log-likelihood (their own risk sets, no penalty) when
    ``dev`` (x, duration, event) is given, self-influence always, residuals, and the
    ``estimator``'s suspicion ranking (the best measured by default)."""
    data = SurvivalData.build(x, duration, event, device)
    fit = fit_cox(data, penalty=penalty, ties=ties)
    vif = VIF.fit(fit.objective(), fit.theta, solver=solver)
    res = residuals(fit)
    influence = None
    metrics: dict[str, float | int] = {
        "n_events": int(data.event.sum()),
        "c_index_train": concordance_index(duration, res.risk, event),
        "newton_iterations": fit.iterations,
    }
    if dev is not None:
        dev_data = SurvivalData.build(*dev, device=data.x.device)
        dev_ones = torch.ones(dev_data.n, dtype=torch.float64, device=data.x.device)
        target = cox_loss(dev_data, 0.0, ties)
        _, dev_gradient, dev_hessian = derivatives_for(dev_data, 0.0, ties)(fit.theta, dev_ones)
        influence = data.unsort(torch.as_tensor(vif.influence(dev_gradient, dev_hessian)))
        dev_risk = dev_data.unsort(dev_data.x @ fit.theta)
        metrics["c_index_dev"] = concordance_index(dev[1], dev_risk, dev[2])
        metrics["dev_loss"] = float(target(fit.theta, dev_ones))
        metrics["dev_events"] = int(dev_data.event.sum())
    self_influence = data.unsort(torch.as_tensor(vif.self_influence()))
    chosen = estimator or DEFAULT_ESTIMATOR
    if chosen.needs_dev and dev is None:
        raise ValueError(f"the {chosen} ranking needs a gold dev set")
    suspicion = suspicion_scores(influence, self_influence, res)[chosen]
    rank = rank_descending(suspicion)
    targets = np.argsort(rank)[:top_evidence_rows]
    return SurvivalScores(
        fit.theta.cpu().numpy(),
        res.risk,
        res.expected,
        res.martingale,
        res.deviance,
        influence,
        self_influence,
        suspicion,
        rank,
        chosen,
        metrics,
        _evidence(vif, data, targets, evidence_k),
    )
