"""Removal gradients D_i = ∇L(all) - ∇L(all without judgment i) of the listwise objectives.

Removing judgment i changes only its own query's term T_q and, when i was the query's last
relevant judgment, the number of counted queries Qc (``listwise`` module docstring). With
G = (1/Qc) Σ_q c_q ∇T_q the data gradient (the penalty's gradient cancels in D_i),

    D_i = G - (Qc·G - c_q ∇T_q + c'_q ∇T_q^{-i}) / Qc',   Qc' = Qc - c_q + c'_q,

so all N rows cost one pass over the queries instead of N passes over the data:

- ListNet, closed form for any scorer (score Jacobian J, rows ∇s_j): removing i
  renormalises the query's two softmaxes, ∇T_q^{-i} = (Σ p J - p_i J_i)/(1 - p_i)
  - (Σ a J - a_i J_i)/(1 - a_i), O(N·p) in all.
- ListMLE, closed form likewise over its L grade-level choice sets, O(N·L·p).
- Any loss, autodiff: ``vmap`` of the query term's gradient over the query's n_q masks,
  Σ n_q² work instead of the N² of masking the whole objective (``vif.removal_gradients``).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import grad, jacrev, vmap

from .listwise import (
    DTYPE,
    LOSS_TERMS,
    ListLoss,
    RankingProblem,
    linear_curvature,
    linear_hessian,
)
from .vif import Objective


def score_jacobian(problem: RankingProblem, theta: Tensor) -> Tensor:
    """(N, p) rows ∇_theta s_j: the features for the linear model, autodiff for the MLP."""
    data, scorer = problem.data, problem.scorer
    if not scorer.hidden:
        return data.features
    return jacrev(lambda t: scorer(t, data.features))(theta)


def _softmax(values: Tensor, weights: Tensor) -> Tensor:
    """Weighted softmax along the last axis of padded (Q, n_max) values."""
    mass = weights * torch.exp(values - values.amax(dim=-1, keepdim=True))
    return mass / mass.sum(dim=-1, keepdim=True)


def _listnet_terms(problem: RankingProblem, theta: Tensor) -> tuple[Tensor, Tensor]:
    """(∇T_q (Q, p), ∇T_q^{-i} (N, p)) of ListNet in closed form."""
    data = problem.data
    J = score_jacobian(problem, theta)
    ones = data.padded(torch.ones_like(data.grades))
    p = data.rows(_softmax(problem.padded_scores(theta), ones))
    a = data.rows(_softmax(data.padded(data.grades), ones))
    Q = data.n_queries
    sum_p = J.new_zeros((Q, J.shape[1])).index_add_(0, data.query, p.unsqueeze(1) * J)
    sum_a = J.new_zeros((Q, J.shape[1])).index_add_(0, data.query, a.unsqueeze(1) * J)

    def renormalised(sums: Tensor, share: Tensor) -> Tensor:
        rest = 1.0 - share
        safe = torch.where(rest > 0, rest, 1.0).unsqueeze(1)  # 0 only for a one-judgment query
        return (sums[data.query] - share.unsqueeze(1) * J) / safe

    return sum_p - sum_a, renormalised(sum_p, p) - renormalised(sum_a, a)


def _listmle_terms(problem: RankingProblem, theta: Tensor) -> tuple[Tensor, Tensor]:
    """(∇T_q (Q, p), ∇T_q^{-i} (N, p)) of ListMLE in closed form: T_q = Σ_l c_l log Σ_{set
    l} e^s - Σ_{relevant} s, so removing i renormalises the softmax of every set holding i
    (levels >= g_i), drops one from c at its own level and its score from the sum."""
    data = problem.data
    J = score_jacobian(problem, theta)
    G = data.padded(data.grades)
    kept = data.padded(torch.ones_like(data.grades))
    member = (G.unsqueeze(-1) <= data.levels) * kept.unsqueeze(-1)  # (Q, n_max, L)
    S = problem.padded_scores(theta)
    mass = torch.exp(S - S.amax(dim=-1, keepdim=True)).unsqueeze(-1) * member
    pi = data.rows(mass / mass.sum(dim=-2, keepdim=True).clamp_min(torch.finfo(DTYPE).tiny))
    relevant = (data.grades > 0).to(DTYPE)
    own_level = (data.grades.unsqueeze(-1) == data.levels) * relevant.unsqueeze(-1)  # (N, L)
    Q, L, p = data.n_queries, data.levels.numel(), J.shape[1]
    coef = own_level.new_zeros((Q, L)).index_add_(0, data.query, own_level)
    sets = J.new_zeros((Q, L, p)).index_add_(0, data.query, pi.unsqueeze(-1) * J.unsqueeze(1))
    rel_sum = J.new_zeros((Q, p)).index_add_(0, data.query, relevant.unsqueeze(1) * J)
    full = torch.einsum("ql,qlp->qp", coef, sets) - rel_sum
    # (M_l - pi_il J_i)/(1 - pi_il) = M_l + w_il (M_l - J_i) with w = pi/(1 - pi) where i is
    # in set l: so ∇T_q^{-i} = Σ_l (c'_l + c'_l w_il) M_l - (Σ_l c'_l w_il) J_i - the scores
    rest = 1.0 - pi
    in_set = data.rows(member) > 0
    coef_without = coef[data.query] - own_level
    safe = torch.where(rest > 0, rest, 1.0)
    weight = coef_without * torch.where(in_set & (rest > 0), pi / safe, 0.0)
    mixed = coef_without + weight
    without = sum(mixed[:, k : k + 1] * sets[data.query, k] for k in range(L))  # L is small
    without = without - weight.sum(dim=1, keepdim=True) * J
    return full, without - (rel_sum[data.query] - relevant.unsqueeze(1) * J)


def _autodiff_terms(problem: RankingProblem, theta: Tensor) -> tuple[Tensor, Tensor]:
    """(∇T_q (Q, p), ∇T_q^{-i} (N, p)) by autodiff, vectorised over each query's masks."""
    data, scorer, levels = problem.data, problem.scorer, problem.data.levels
    terms = LOSS_TERMS[problem.loss]

    def term(t: Tensor, X: Tensor, g: Tensor, w: Tensor) -> Tensor:
        return terms(scorer(t, X), g, w, levels)

    term_grad = grad(term)
    masked = vmap(term_grad, in_dims=(None, None, None, 0))
    full = theta.new_zeros((data.n_queries, theta.numel()))
    without = theta.new_zeros((data.n, theta.numel()))
    for q in range(data.n_queries):  # a loop over queries; units are vectorised
        rows = torch.nonzero(data.query == q).squeeze(1)
        X, g = data.features[rows], data.grades[rows]
        eye = torch.eye(len(rows), dtype=DTYPE, device=X.device)
        full[q] = term_grad(theta, X, g, torch.ones_like(g))
        without[rows] = masked(theta, X, g, 1.0 - eye)
    return full, without


def removal_gradients(
    problem: RankingProblem, theta: Tensor, *, closed_form: bool = True
) -> Tensor:
    """(N, p) rows D_i at the full data (every weight 1): the loss's closed form, or with
    ``closed_form`` False per-query autodiff (the cross-check)."""
    data = problem.data
    if closed_form:
        closed = _listnet_terms if problem.loss is ListLoss.LISTNET else _listmle_terms
        full, without = closed(problem, theta)
    else:
        full, without = _autodiff_terms(problem, theta)
    relevant = (data.grades > 0).to(DTYPE)
    per_query = relevant.new_zeros(data.n_queries).index_add_(0, data.query, relevant)
    counted = (per_query > 0).to(DTYPE)
    still = ((per_query[data.query] - relevant) > 0).to(DTYPE)  # c'_q after removing i
    n_counted = counted.sum()
    total = (counted.unsqueeze(1) * full).sum(dim=0)
    G = total / n_counted.clamp_min(1.0)
    c = counted[data.query].unsqueeze(1)
    after = total - c * full[data.query] + still.unsqueeze(1) * without
    n_after = (n_counted - c.squeeze(1) + still).unsqueeze(1)
    return G - torch.where(n_after > 0, after / n_after.clamp_min(1.0), 0.0)


def vif_objective(problem: RankingProblem) -> Objective:
    """The problem as ``vif.Objective``, with its removal gradients and, for the linear
    model, its closed-form Hessian and the judgments' curvature factors (the MLP's steps stay
    first order)."""
    ones = torch.ones_like(problem.data.grades)
    linear = not problem.scorer.hidden
    return Objective(
        loss=problem.objective,
        n_units=problem.data.n,
        removal_gradients=lambda theta: removal_gradients(problem, theta),
        hessian=(lambda t: linear_hessian(problem, t, ones)) if linear else None,
        removal_curvature=(lambda t: linear_curvature(problem, t)) if linear else None,
    )
