"""Convex multinomial logistic head on frozen embeddings.

Influence functions are exact only for a strictly convex objective solved to its optimum, so the
head is plain L2-regularised softmax regression solved to a tight tolerance in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._device import resolve_device, to_tensor


@dataclass
class LogisticHead:
    """Softmax classifier ``p = softmax(X @ weight.T + bias)``; weight (C, d), bias (C,).

    Parameters are numpy float64 arrays so heads pickle / store without torch.
    """

    weight: np.ndarray
    bias: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(self.weight.shape[0])

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Raw class scores (n, C) in float64."""
        return np.asarray(X, dtype=np.float64) @ self.weight.T + self.bias

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n, C) in float64."""
        z = self.logits(X)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def log_loss(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-example cross-entropy (n,) at labels ``y``, computed stably via log-sum-exp."""
        z = self.logits(X)
        m = z.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
        return lse - z[np.arange(len(z)), np.asarray(y, dtype=np.int64)]

    @classmethod
    def from_theta(cls, theta: torch.Tensor) -> LogisticHead:
        """The head with parameters [W | b] given as a (C, d+1) tensor."""
        out = theta.cpu().numpy().astype(np.float64)
        return cls(weight=out[:, :-1].copy(), bias=out[:, -1].copy())

    def theta(self, device: torch.device) -> torch.Tensor:
        """Parameters [W | b] (C, d+1) as a float64 tensor, the layout gradients use."""
        theta = np.concatenate([self.weight, self.bias[:, None]], axis=1)
        return to_tensor(theta, torch.float64, device)


def augmented(X: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Rows z = [x, 1] in float64, so that logits are z @ theta.T."""
    Xt = to_tensor(X, torch.float64, device)
    return torch.cat([Xt, torch.ones(len(Xt), 1, dtype=torch.float64, device=device)], dim=1)


def softmax_residuals(Z: torch.Tensor, theta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """p - onehot(y) (n, C): the cross-entropy gradient is this residual ⊗ z."""
    resid = torch.softmax(Z @ theta.T, dim=1)
    resid[torch.arange(len(y), device=Z.device), y] -= 1.0
    return resid


def regularised_objective(
    theta: torch.Tensor,
    X: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    l2: float,
) -> torch.Tensor:
    """Weighted mean cross-entropy + (l2/2)·||theta||² for theta = [W | b] of shape (C, d+1).

    Exposed so tests can differentiate the very function the solver minimises.
    """
    logits = X @ theta[:, :-1].T + theta[:, -1]
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    return (w * ce).sum() / w.sum() + 0.5 * l2 * (theta * theta).sum()


def fit_logistic_head(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    l2: float,
    sample_weight: np.ndarray | None = None,
    device: str | None = None,
    max_iter: int = 1000,
    tol: float = 1e-10,
    init: LogisticHead | None = None,
) -> LogisticHead:
    """Fit ``min_theta  sum_i w_i CE_i / sum_i w_i + (l2/2) (||W||² + ||b||²)``.

    The bias is regularised too: with ``l2 > 0`` the Hessian is then positive definite even
    though softmax is over-parameterised, which the Cholesky-based influence relies on.
    ``sample_weight`` defaults to ones (plain mean); a zero weight is exactly "trained without
    that item". Solved with float64 L-BFGS (strong Wolfe) until the largest gradient entry is
    below ``tol``; ``init`` warm-starts it, which makes leave-one-out refits take few steps.
    """
    if l2 <= 0:
        raise ValueError("l2 must be positive for a strictly convex objective")
    dev = resolve_device(device)
    Xt = to_tensor(X, torch.float64, dev)
    yt = to_tensor(y, torch.int64, dev)
    n, d = Xt.shape
    if sample_weight is None:
        wt = torch.ones(n, dtype=torch.float64, device=dev)
    else:
        wt = to_tensor(sample_weight, torch.float64, dev)
    if init is None:
        theta0 = torch.zeros(n_classes, d + 1, dtype=torch.float64, device=dev)
    else:
        theta0 = init.theta(dev)
    theta = theta0.requires_grad_(True)

    opt = torch.optim.LBFGS(
        [theta],
        lr=1.0,
        max_iter=max_iter,
        max_eval=max_iter * 2,
        tolerance_grad=tol,
        tolerance_change=1e-20,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = regularised_objective(theta, Xt, yt, wt, l2)
        loss.backward()
        return loss

    opt.step(closure)
    return LogisticHead.from_theta(theta.detach())


def fit_without(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    index: int,
    *,
    l2: float,
    init: LogisticHead,
    device: str | None = None,
) -> LogisticHead:
    """The optimum on all rows but ``index``: brute-force leave-one-out, the ground truth for
    influence estimates, warm-started from ``init`` (the optimum with the row) to take few steps."""
    keep = np.arange(len(y)) != index
    return fit_logistic_head(X[keep], y[keep], n_classes, l2=l2, device=device, init=init)
