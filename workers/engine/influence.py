"""Exact inverse-Hessian influence functions for the convex logistic head.

Parameters are theta = [W | b] of shape (C, d+1), flattened row-major, so parameter index
``c * (d + 1) + k`` is weight (c, k) for k < d and bias c for k == d. The per-example gradient
of the cross-entropy is ``(p - onehot(y)) ⊗ [x, 1]`` and the Hessian of the training objective is

    H = (1/n) Σ_i (diag(p_i) - p_i p_iᵀ) ⊗ [x_i, 1][x_i, 1]ᵀ + l2 · I.

Sign convention (the app depends on it):

    influence(j → t) = (1/n) ∇L_tᵀ H⁻¹ ∇L_j ≈ loss_t(trained without j) - loss_t(trained with j)

Positive: j supports t (removing j would raise t's loss). Negative: j opposes / harms t.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ._device import resolve_device, to_tensor
from .head import LogisticHead

# Upper bound on float64 elements of one targets x train block (256 MiB).
_BLOCK_ELEMS = 1 << 25


@dataclass
class TopK:
    """Per target, the k most positive (supporters) and most negative (opposers) train items.

    All arrays are (n_targets, k); supporters are sorted descending, opposers ascending (most
    harmful first). Indices refer to rows of the training set.
    """

    supporters_idx: np.ndarray
    supporters_val: np.ndarray
    opposers_idx: np.ndarray
    opposers_val: np.ndarray


class ExactHeadInfluence:
    """Influence of training items on losses, from the exact Hessian of the fitted head.

    ``head`` must be the optimum of the objective in ``fit_logistic_head`` on exactly
    ``(X_train, y_train)`` with the same ``l2``; otherwise the first-order expansion behind
    influence functions does not hold. The Hessian is factorised once (Cholesky, float64).
    """

    def __init__(
        self,
        head: LogisticHead,
        X_train: np.ndarray,
        y_train: np.ndarray,
        *,
        l2: float,
        device: str | None = None,
        block_size: int = 1024,
    ) -> None:
        self.device = resolve_device(device)
        self.l2 = float(l2)
        self.block_size = int(block_size)
        self._W = to_tensor(head.weight, torch.float64, self.device)
        self._b = to_tensor(head.bias, torch.float64, self.device)
        self.n_classes = int(self._W.shape[0])
        self.dim = int(self._W.shape[1]) + 1
        self.n_params = self.n_classes * self.dim

        Z = self._augment(X_train)
        yt = to_tensor(y_train, torch.int64, self.device)
        self.n = int(Z.shape[0])
        probs = self._probs(Z)
        self.train_probs = probs.cpu().numpy()
        self._G = self._grads_from(Z, probs, yt)
        self._H = self._build_hessian(Z, probs)
        self._L = torch.linalg.cholesky(self._H)

    # ---- basic pieces -------------------------------------------------------------------

    def _augment(self, X: np.ndarray) -> torch.Tensor:
        X = to_tensor(X, torch.float64, self.device)
        ones = torch.ones(X.shape[0], 1, dtype=torch.float64, device=self.device)
        return torch.cat([X, ones], dim=1)

    def _probs(self, Z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(Z[:, :-1] @ self._W.T + self._b, dim=1)

    def _grads_from(self, Z: torch.Tensor, probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        resid = probs.clone()
        resid[torch.arange(len(y), device=self.device), y] -= 1.0
        return (resid[:, :, None] * Z[:, None, :]).reshape(len(y), self.n_params)

    def _grads(self, X: np.ndarray, y: np.ndarray) -> torch.Tensor:
        Z = self._augment(X)
        yt = to_tensor(y, torch.int64, self.device)
        return self._grads_from(Z, self._probs(Z), yt)

    def _build_hessian(self, Z: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Accumulate Σ_i S_i ⊗ z_i z_iᵀ over row blocks (no per-item Python loop)."""
        C, D = self.n_classes, self.dim
        H = torch.zeros(C, D, C, D, dtype=torch.float64, device=self.device)
        rows = max(1, _BLOCK_ELEMS // (C * C * D))
        for s in range(0, self.n, rows):
            p = probs[s : s + rows]
            z = Z[s : s + rows]
            S = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
            # H[a, k, b, l] += Σ_i S_i[a, b] z_i[k] z_i[l]
            H += torch.einsum("iab,ik,il->akbl", S, z, z)
        H = H.reshape(C * D, C * D) / self.n
        H += self.l2 * torch.eye(C * D, dtype=torch.float64, device=self.device)
        return H

    def _solve(self, B: torch.Tensor) -> torch.Tensor:
        """H⁻¹ B for B of shape (P, m)."""
        return torch.cholesky_solve(B, self._L)

    def _rows_per_block(self) -> int:
        return max(1, min(self.block_size, _BLOCK_ELEMS // max(self.n, 1)))

    # ---- exposed for checks -------------------------------------------------------------

    def hessian(self) -> np.ndarray:
        """The regularised Hessian (P, P) of the training objective at the fitted head."""
        return self._H.cpu().numpy()

    def gradients(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-example cross-entropy gradients (m, P) w.r.t. the flattened parameters."""
        return self._grads(X, y).cpu().numpy()

    # ---- influence scores ---------------------------------------------------------------

    def self_influence(self) -> np.ndarray:
        """(1/n) g_iᵀ H⁻¹ g_i per training item: ≈ rise of its own loss if it were left out.

        High values mark items the model can only fit by memorising them: suspicious labels.
        """
        out = torch.empty(self.n, dtype=torch.float64, device=self.device)
        rows = self._rows_per_block()
        for s in range(0, self.n, rows):
            G = self._G[s : s + rows]
            out[s : s + rows] = (self._solve(G.T).T * G).sum(dim=1) / self.n
        return out.cpu().numpy()

    def dev_influence(self, X_dev: np.ndarray, y_dev: np.ndarray) -> np.ndarray:
        """Influence of each training item on the mean dev loss (n,).

        ≈ mean_dev_loss(without j) - mean_dev_loss(with j); negative = removing j would lower
        the dev loss, i.e. j is harmful.
        """
        gbar = self._grads(X_dev, y_dev).mean(dim=0)
        v = self._solve(gbar[:, None])[:, 0]
        return (self._G @ v / self.n).cpu().numpy()

    def influence(self, X_t: np.ndarray, y_t: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
        """Stream the (targets x train) influence matrix in row blocks of targets.

        Yields ``(target_slice, block)`` with block[r, j] = influence(j → target slice.start+r).
        """
        for sl, block in self._blocks(X_t, y_t):
            yield sl, block.cpu().numpy()

    def _blocks(self, X_t: np.ndarray, y_t: np.ndarray) -> Iterator[tuple[slice, torch.Tensor]]:
        X_t = np.asarray(X_t)
        y_t = np.asarray(y_t)
        rows = self._rows_per_block()
        for s in range(0, len(X_t), rows):
            sl = slice(s, min(s + rows, len(X_t)))
            Gt = self._grads(X_t[sl], y_t[sl])
            At = self._solve(Gt.T).T / self.n
            yield sl, At @ self._G.T

    def top_k(
        self,
        X_t: np.ndarray,
        y_t: np.ndarray,
        k: int,
        *,
        exclude_self: np.ndarray | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> TopK:
        """k strongest supporters and opposers among training items for every target.

        ``exclude_self[t]`` is the training index of target t (or -1) so an item is not
        reported as evidence for itself. ``progress`` receives the fraction of targets done.
        """
        m = len(X_t)
        k = min(k, self.n - (1 if exclude_self is not None else 0))
        sup_i = np.empty((m, k), dtype=np.int64)
        sup_v = np.empty((m, k), dtype=np.float64)
        opp_i = np.empty((m, k), dtype=np.int64)
        opp_v = np.empty((m, k), dtype=np.float64)
        ex = None if exclude_self is None else np.asarray(exclude_self, dtype=np.int64)
        for sl, block in self._blocks(X_t, y_t):
            hi, lo = block, block
            if ex is not None:
                rows = np.nonzero(ex[sl] >= 0)[0]
                if len(rows):
                    r = torch.as_tensor(rows, device=self.device)
                    c = torch.as_tensor(ex[sl][rows], device=self.device)
                    hi = block.clone()
                    lo = block.clone()
                    hi[r, c] = -torch.inf
                    lo[r, c] = torch.inf
            v, i = torch.topk(hi, k, dim=1, largest=True, sorted=True)
            sup_v[sl], sup_i[sl] = v.cpu().numpy(), i.cpu().numpy()
            v, i = torch.topk(lo, k, dim=1, largest=False, sorted=True)
            opp_v[sl], opp_i[sl] = v.cpu().numpy(), i.cpu().numpy()
            if progress is not None:
                progress(sl.stop / m)
        return TopK(sup_i, sup_v, opp_i, opp_v)
