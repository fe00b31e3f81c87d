"""Listwise learning to rank (ListNet, ListMLE) over relevance judgments, written for VIF.

A unit is one judgment (query, document, grade). Every judgment j carries a removal weight
w_j that enters the loss only as w_j·exp(·) or w_j·(term of j), so w_j = 0 removes it exactly
(the leave-one-out objective VIF differentiates, ``workers.engine.vif``). Queries are padded
to one dense (Q, n_max) block, padding weighted 0, so every loss is a few dense ops that
``torch.func.vmap`` batches over weight vectors.

Per query q (kept judgments only):

- ListNet (top-one, Cao et al. 2007): the target distribution is the softmax of the grades
  (the paper's choice; grade 4 weighs e⁴ ≈ 55 grade-0 documents), the model's the softmax of
  the scores; loss_q = cross-entropy = -Σ_j a_j s_j + log Σ_j w_j e^{s_j}.
- ListMLE (Xia et al. 2008): the Plackett-Luce likelihood of the grade-sorted order. Tied
  grades have no order, so they share one choice set (Breslow's convention, as for tied
  event times in a Cox model): each judgment with a grade above 0 contributes
  -s_j + log Σ_{k: g_k ≤ g_j} w_k e^{s_k}; grade-0 documents only appear in choice sets
  (their mutual order is unknown, like censored records). It does not depend on row order.

A query counts while it keeps a judgment with grade > 0 (without one there is no order to
learn: ListMLE has no term and ListNet's target would be uniform); the objective is the mean
over counted queries plus ``penalty``/2 |theta|². Removing a query's last relevant judgment
drops the query from the mean's count, as brute-force retraining would.

Models: linear s = x·theta (convex: Newton's method to a gradient of 1e-10, so leave-one-out
refits reach the same optimum) and a one-hidden-layer tanh MLP (non-convex: L-BFGS from a
seeded start).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from ._device import resolve_device, to_tensor

DTYPE = torch.float64
MLP_TOL, MLP_ITERATIONS = 1e-6, 500


class ListLoss(StrEnum):
    LISTNET = "listnet"
    LISTMLE = "listmle"


class ScoreModel(StrEnum):
    LINEAR = "linear"
    MLP = "mlp"


@dataclass(frozen=True)
class Standardisation:
    """Training mean and standard deviation (1 where a feature is constant)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, features: ArrayLike) -> Standardisation:
        X = np.asarray(features, dtype=np.float64)
        std = X.std(axis=0)
        return cls(X.mean(axis=0), np.where(std > 0, std, 1.0))

    def apply(self, features: ArrayLike) -> np.ndarray:
        return (np.asarray(features, dtype=np.float64) - self.mean) / self.std


@dataclass(frozen=True)
class Judgments:
    """Judgments padded per query: row r of the input sits at ``pad[query[r], slot[r]]``.

    ``index`` (Q, n_max) maps each padded cell back to its row, padding to row N (a zero
    slot appended to per-row vectors by ``padded``). Queries are numbered in order of first
    appearance, so rows need not be grouped by query.
    """

    features: Tensor  # (N, d)
    grades: Tensor  # (N,)
    query: Tensor  # (N,) long, 0..Q-1
    slot: Tensor  # (N,) long
    index: Tensor  # (Q, n_max) long
    qids: np.ndarray  # (Q,) the input's query id of each query
    levels: Tensor  # (L,) 0..max grade, the ListMLE choice-set levels

    @property
    def n(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_queries(self) -> int:
        return int(self.index.shape[0])

    def padded(self, values: Tensor) -> Tensor:
        """Per-row values (N, ...) as (Q, n_max, ...), padding 0."""
        pad = torch.zeros((1, *values.shape[1:]), dtype=values.dtype, device=values.device)
        return torch.cat([values, pad])[self.index]

    def rows(self, padded: Tensor) -> Tensor:
        """Inverse of ``padded``: (Q, n_max, ...) back to per-row (N, ...)."""
        return padded[self.query, self.slot]


def judgments(
    features: ArrayLike, grades: ArrayLike, qids: ArrayLike, device: torch.device
) -> Judgments:
    """Group rows by query id (in order of first appearance) and pad the groups."""
    q_in = np.asarray(qids)
    g = np.asarray(grades, dtype=np.float64)
    if g.ndim != 1 or len(g) != len(q_in) or len(g) != len(np.asarray(features)):
        raise ValueError("features, grades and qids need one row per judgment")
    if len(g) == 0 or (g < 0).any() or (g != np.round(g)).any():
        raise ValueError("grades must be integers >= 0")
    uniq, first, query = np.unique(q_in, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # query numbers in order of first appearance
    renumber = np.empty(len(uniq), dtype=np.int64)
    renumber[order] = np.arange(len(uniq))
    query = renumber[query.ravel()]
    slot = np.zeros(len(query), dtype=np.int64)
    counts = np.zeros(len(uniq), dtype=np.int64)
    for r, q in enumerate(query):  # O(N), once per data set
        slot[r] = counts[q]
        counts[q] += 1
    index = np.full((len(uniq), counts.max(initial=1)), len(query), dtype=np.int64)
    index[query, slot] = np.arange(len(query))
    long = torch.long
    return Judgments(
        features=to_tensor(features, DTYPE, device),
        grades=to_tensor(g, DTYPE, device),
        query=torch.tensor(query, dtype=long, device=device),
        slot=torch.tensor(slot, dtype=long, device=device),
        index=torch.tensor(index, dtype=long, device=device),
        qids=uniq[order],
        levels=torch.arange(int(g.max()) + 1, dtype=DTYPE, device=device),
    )


@dataclass(frozen=True)
class Scorer:
    """s(theta, X): linear (``hidden`` 0) or tanh MLP with ``hidden`` units and no output
    bias (a constant shift cancels in both losses). theta = [W (h·d) | b (h) | v (h)]."""

    n_features: int
    hidden: int = 0

    @property
    def n_params(self) -> int:
        d, h = self.n_features, self.hidden
        return d if h == 0 else h * d + 2 * h

    def __call__(self, theta: Tensor, X: Tensor) -> Tensor:
        if self.hidden == 0:
            return X @ theta
        d, h = self.n_features, self.hidden
        W = theta[: h * d].reshape(h, d)
        b, v = theta[h * d : h * d + h], theta[h * d + h :]
        return torch.tanh(X @ W.T + b) @ v

    def initial(self, seed: int, device: torch.device) -> Tensor:
        """Zeros for the convex linear model; a seeded scaled-normal start for the MLP."""
        if self.hidden == 0:
            return torch.zeros(self.n_features, dtype=DTYPE, device=device)
        gen = torch.Generator().manual_seed(seed)
        d, h = self.n_features, self.hidden
        W = torch.randn(h, d, generator=gen, dtype=DTYPE) / d**0.5
        v = torch.randn(h, generator=gen, dtype=DTYPE) / h**0.5
        return torch.cat([W.ravel(), torch.zeros(h, dtype=DTYPE), v]).to(device)


def _log_sum(values: Tensor, weights: Tensor) -> Tensor:
    """log Σ w e^{v} along the last axis, stable; 0 where every weight is 0 (the caller
    masks those queries out, and a finite value keeps their gradient finite)."""
    shift = values.detach().amax(dim=-1, keepdim=True)
    total = (weights * torch.exp(values - shift)).sum(dim=-1)
    empty = total <= 0
    return torch.where(empty, 0.0, torch.log(torch.where(empty, 1.0, total)) + shift[..., 0])


def counted(grades: Tensor, weights: Tensor) -> Tensor:
    """(Q,) 1.0 for queries that keep a judgment with grade > 0, else 0.0 (padded inputs)."""
    return ((weights * (grades > 0)).sum(dim=-1) > 0).to(weights.dtype)


def listnet_terms(scores: Tensor, grades: Tensor, weights: Tensor, levels: Tensor) -> Tensor:
    """Per-query ListNet cross-entropy of padded (..., n_max) scores, grades and weights
    (``levels`` unused: one signature for both losses)."""
    target = weights * torch.exp(grades - grades.amax(dim=-1, keepdim=True))
    target = target / target.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(DTYPE).tiny)
    return _log_sum(scores, weights) - (target * scores).sum(dim=-1)


def listmle_terms(scores: Tensor, grades: Tensor, weights: Tensor, levels: Tensor) -> Tensor:
    """Per-query ListMLE (Breslow ties, grade 0 only in choice sets) of padded inputs: the
    choice sets are nested by grade ``levels``, so one sum per level serves every judgment."""
    shift = scores.detach().amax(dim=-1, keepdim=True)
    kept = weights * torch.exp(scores - shift)
    at_most = (grades.unsqueeze(-1) <= levels).to(DTYPE)  # (..., n, L)
    sets = (kept.unsqueeze(-1) * at_most).sum(dim=-2)  # (..., L)
    log_sets = torch.log(torch.where(sets > 0, sets, 1.0)) + shift
    own = (grades.unsqueeze(-1) == levels).to(DTYPE)
    log_own = (own * log_sets.unsqueeze(-2)).sum(dim=-1)  # log of j's choice set
    return (weights * (grades > 0) * (log_own - scores)).sum(dim=-1)


LOSS_TERMS: dict[ListLoss, Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]] = {
    ListLoss.LISTNET: listnet_terms,
    ListLoss.LISTMLE: listmle_terms,
}


@dataclass(frozen=True)
class RankingProblem:
    """One objective: judgments, scorer, loss and penalty. ``objective(theta, weights)`` is
    the penalised training objective; ``data_loss(theta)`` the unpenalised mean (the dev
    target)."""

    data: Judgments
    scorer: Scorer
    loss: ListLoss = ListLoss.LISTNET
    penalty: float = 0.01

    def padded_scores(self, theta: Tensor) -> Tensor:
        return self.data.padded(self.scorer(theta, self.data.features))

    def query_terms(self, theta: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
        """(per-query losses, counted indicator), both (Q,), for row weights (N,)."""
        w = self.data.padded(weights)
        g = self.data.padded(self.data.grades)
        terms = LOSS_TERMS[self.loss](self.padded_scores(theta), g, w, self.data.levels)
        return terms, counted(g, w)

    def data_loss(self, theta: Tensor, weights: Tensor | None = None) -> Tensor:
        if weights is None:
            weights = torch.ones_like(self.data.grades)
        terms, count = self.query_terms(theta, weights)
        return (terms * count).sum() / count.sum().clamp_min(1.0)

    def objective(self, theta: Tensor, weights: Tensor) -> Tensor:
        return self.data_loss(theta, weights) + 0.5 * self.penalty * theta.pow(2).sum()


def _choice_sets(problem: RankingProblem, theta: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """Both losses are Σ coef · log Σ_{k in set} w_k e^{s_k} minus terms linear in s:
    returns coef (Q, L) (the query's share of the mean times the set's multiplicity) and the
    softmax pi (Q, n_max, L) of the scores over each set. ListNet has one set per query (all
    its judgments); ListMLE one per grade level (judgments graded at most the level), used
    once per relevant judgment at that level."""
    data = problem.data
    S = problem.padded_scores(theta)
    G, W = data.padded(data.grades), data.padded(weights)
    count = counted(G, W)
    share = (count / count.sum().clamp_min(1.0)).unsqueeze(-1)
    kept = W * torch.exp(S - S.amax(dim=-1, keepdim=True))
    if problem.loss is ListLoss.LISTNET:
        member, coef = torch.ones_like(G).unsqueeze(-1), share
    else:
        member = (G.unsqueeze(-1) <= data.levels).to(DTYPE)
        at_level = (G.unsqueeze(-1) == data.levels) * (W * (G > 0)).unsqueeze(-1)
        coef = share * at_level.sum(dim=-2)
    mass = kept.unsqueeze(-1) * member
    return coef, mass / mass.sum(dim=-2, keepdim=True).clamp_min(torch.finfo(DTYPE).tiny)


def linear_hessian(
    problem: RankingProblem, theta: Tensor, weights: Tensor, *, penalised: bool = True
) -> Tensor:
    """Exact Hessian of the linear model's objective (``penalised``) or data loss in
    O(N·L·d²): each log-sum-exp over a set contributes Xᵀ(diag pi - pi piᵀ)X (the linear
    terms none)."""
    data = problem.data
    coef, pi = _choice_sets(problem, theta, weights)
    diag = data.rows((pi * coef.unsqueeze(-2)).sum(dim=-1))
    mean = torch.einsum("qnl,qnd->qld", pi, data.padded(data.features))
    X = data.features
    H = X.T @ (diag.unsqueeze(-1) * X) - torch.einsum("ql,qld,qle->de", coef, mean, mean)
    if not penalised:
        return H
    return H + problem.penalty * torch.eye(X.shape[1], dtype=DTYPE, device=X.device)


def target_hessian(problem: RankingProblem, theta: Tensor) -> Tensor | None:
    """The data loss's Hessian as a dev target's, for VIF's second-order change: closed form
    for the linear model, None for the MLP (its change stays first order)."""
    if problem.scorer.hidden:
        return None
    return linear_hessian(problem, theta, torch.ones_like(problem.data.grades), penalised=False)


def linear_curvature(problem: RankingProblem, theta: Tensor) -> Tensor:
    """(N, d) rows u_i with ``H_-i ~ H - u_i u_i^T``, the linear model's judgment i's own share
    of the Hessian: in each set l holding it, coef_l pi_il (x_i - m_l)(x_i - m_l)^T, m_l the
    set's softmax mean; summed over the sets with m_l replaced by their weighted mean, rank
    one (exact for ListNet's single set up to the renormalisation of the others)."""
    data = problem.data
    coef, pi = _choice_sets(problem, theta, torch.ones_like(data.grades))
    share = data.rows(pi * coef.unsqueeze(-2))  # (N, L)
    means = torch.einsum("qnl,qnd->qld", pi, data.padded(data.features))[data.query]
    total = share.sum(dim=1)
    centre = torch.einsum("nl,nld->nd", share, means) / total.clamp_min(
        torch.finfo(DTYPE).tiny
    ).unsqueeze(1)
    return total.sqrt().unsqueeze(1) * (data.features - centre)


def fit(
    problem: RankingProblem,
    weights: Tensor | None = None,
    *,
    start: Tensor | None = None,
    seed: int = 0,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> Tensor:
    """Minimise the objective: Newton with backtracking for the linear model (convex, p = d;
    ``tol`` and ``max_iter`` apply), L-BFGS with a strong-Wolfe line search for the MLP (to a
    gradient of ``MLP_TOL`` or ``MLP_ITERATIONS`` steps: a non-convex fit has no unique
    optimum to chase). ``start`` warm-starts (leave-one-out refits start from the full fit)."""
    data = problem.data
    w = torch.ones_like(data.grades) if weights is None else weights
    theta = problem.scorer.initial(seed, data.features.device) if start is None else start
    theta = theta.detach().clone()

    def f(t: Tensor) -> Tensor:
        return problem.objective(t, w)

    if problem.scorer.hidden:
        return _lbfgs(f, theta, MLP_TOL, MLP_ITERATIONS)
    return _newton(f, lambda t: linear_hessian(problem, t, w), theta, tol, max_iter)


def _newton(
    f: Callable[[Tensor], Tensor],
    hessian: Callable[[Tensor], Tensor],
    theta: Tensor,
    tol: float,
    max_iter: int,
) -> Tensor:
    """Damped Newton. Once the predicted decrease is below what float64 resolves of f, a line
    search cannot see progress: full steps then (quadratic convergence), while the gradient
    keeps shrinking."""
    value = f(theta)
    g = _gradient(f, theta)
    for _ in range(max_iter):
        if g.abs().max() < tol:
            break
        step = torch.linalg.solve(hessian(theta), g)
        if g @ step < 1e-12 * max(1.0, abs(value.item())):
            candidate = theta - step
            new_g = _gradient(f, candidate)
            if new_g.abs().max() >= g.abs().max():
                break
            theta, g, value = candidate, new_g, f(candidate)
            continue
        t = 1.0
        while t > 1e-12:
            candidate = theta - t * step
            new = f(candidate)
            if new <= value:
                break
            t /= 2
        if t <= 1e-12:
            break
        theta, value = candidate, new
        g = _gradient(f, theta)
    return theta


def _gradient(f: Callable[[Tensor], Tensor], theta: Tensor) -> Tensor:
    """Plain reverse mode (torch.func.grad rebuilds its transform per objective: slower for
    the one-off gradients of a fit)."""
    t = theta.detach().requires_grad_(True)
    return torch.autograd.grad(f(t), t)[0]


def _lbfgs(f: Callable[[Tensor], Tensor], theta: Tensor, tol: float, max_iter: int) -> Tensor:
    theta = theta.requires_grad_(True)
    opt = torch.optim.LBFGS(
        [theta],
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=0.0,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad()
        value = f(theta)
        value.backward()
        return value

    opt.step(closure)
    return theta.detach()


def model_ranks(scores: np.ndarray, query: np.ndarray) -> np.ndarray:
    """1-based rank of each judgment within its query, highest score first (ties: row order)."""
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores), query))
    starts = np.r_[0, np.flatnonzero(np.diff(query[order])) + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(starts, sizes) + 1
    return rank


def ndcg_at(scores: np.ndarray, grades: np.ndarray, query: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k over queries with a relevant judgment; gain 2^g - 1, discount log2(1+rank)
    (the LETOR/MSLR convention; score ties by row order)."""
    rank = model_ranks(scores, query)
    ideal = model_ranks(np.asarray(grades, dtype=np.float64), query)
    gain = np.exp2(np.asarray(grades, dtype=np.float64)) - 1.0
    n_q = int(query.max(initial=-1)) + 1

    def dcg(r: np.ndarray) -> np.ndarray:
        keep = r <= k
        return np.bincount(query[keep], gain[keep] / np.log2(1.0 + r[keep]), minlength=n_q)

    best = dcg(ideal)
    has = best > 0
    return float((dcg(rank)[has] / best[has]).mean()) if has.any() else float("nan")


def ranking_problem(
    features: ArrayLike,
    grades: ArrayLike,
    qids: ArrayLike,
    *,
    standardisation: Standardisation,
    model: ScoreModel = ScoreModel.LINEAR,
    hidden: int = 8,
    loss: ListLoss = ListLoss.LISTNET,
    penalty: float = 0.01,
    device: str | torch.device | None = None,
) -> RankingProblem:
    """Standardise features with the training statistics and build the objective."""
    X = standardisation.apply(features)
    data = judgments(X, grades, qids, resolve_device(device))
    scorer = Scorer(X.shape[1], hidden if ScoreModel(model) is ScoreModel.MLP else 0)
    return RankingProblem(data, scorer, ListLoss(loss), penalty)
