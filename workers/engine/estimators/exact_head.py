"""Exact inverse-Hessian influence functions for the convex logistic head.

Parameters are theta = [W | b] of shape (C, d+1), flattened row-major, so parameter index
``c * (d + 1) + k`` is weight (c, k) for k < d and bias c for k == d. The per-example gradient
of the cross-entropy is ``(p - onehot(y)) ⊗ [x, 1]`` and the Hessian of the training objective is

    H = (1/n) Σ_i (diag(p_i) - p_i p_iᵀ) ⊗ [x_i, 1][x_i, 1]ᵀ + l2 · I.

Sign convention (the app depends on it):

    influence(j → t) = (1/n) ∇L_tᵀ (H + λI)⁻¹ ∇L_j ≈ loss_t(trained without j) - loss_t(with j)

Positive: j supports t (removing j would raise t's loss). Negative: j opposes / harms t.
λ is extra damping, 0 unless the Hessian is too ill-conditioned to factorise accurately.

A calibrated estimator (``calibrated``) serves the trained weights W with biases b* re-fitted
on a gold dev set D (``calibration.refit_bias``: ∇_b L_D(W, b*) + l2·(b* - b) = 0). Removing j
moves the trained (W, b) by the usual first-order step, and b* follows by the implicit
function theorem: δb* = A⁻¹ (l2·δb - K δW), A = ∇²_bb L_D + l2·I, K = ∇²_bW L_D. So a target's
gradient, taken at the served model, becomes u = [∇_W L_t - Kᵀ v | l2·v] with v = A⁻¹ ∇_b L_t,
and influence is (1/n) uᵀ (H + λI)⁻¹ ∇L_j as before (``tests/engine/test_calibration.py``
checks it against leave-one-out retraining followed by re-calibration).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, Self

import numpy as np
import torch

from .._device import resolve_device, to_tensor
from ..calibration import refit_bias
from ..head import LogisticHead, augmented, fit_logistic_head, fit_without, softmax_residuals
from .blocked import BLOCK_ELEMS, BlockedEstimator

# float64 solves lose about log10(condition number) of their ~16 digits.
DEFAULT_MAX_CONDITION = 1e8


def auto_damping(eigenvalues: np.ndarray, max_condition: float) -> float:
    """Smallest λ ≥ 0 with (λ_max + λ) / (λ_min + λ) ≤ ``max_condition``.

    The ratio falls monotonically in λ, so the bound is met with equality at the λ returned
    whenever the undamped matrix violates it.
    """
    lo, hi = float(eigenvalues.min()), float(eigenvalues.max())
    if hi <= max_condition * lo:
        return 0.0
    return (hi - max_condition * lo) / (max_condition - 1.0)


class ExactHeadInfluence(BlockedEstimator):
    """Influence of training items on losses, from the exact Hessian of the fitted head.

    ``head`` must be the optimum of the objective in ``fit_logistic_head`` on exactly
    ``(X_train, y_train)`` with the same ``l2``; otherwise the first-order expansion behind
    influence functions does not hold. The Hessian is factorised once (Cholesky, float64).
    ``damping="auto"`` adds the smallest λ that keeps its condition number under
    ``max_condition`` (0 for any sensible l2); a number fixes λ. ``diagnostics`` reports both.
    ``factor`` (with its ``diagnostics``) restores an estimator from ``cholesky_factor()`` of
    an earlier one on the same data without rebuilding the Hessian: how scoring shards share
    one fit. ``calibrate_on`` = (X_dev, y_dev) makes ``model`` the served head, its biases
    re-fitted there (``calibrated`` builds it from a fitted estimator); ``trained`` is always the
    optimum the Hessian belongs to.
    """

    name = "exact_head"

    def __init__(
        self,
        head: LogisticHead,
        X_train: np.ndarray,
        y_train: np.ndarray,
        *,
        l2: float,
        damping: float | Literal["auto"] = "auto",
        max_condition: float = DEFAULT_MAX_CONDITION,
        device: str | None = None,
        block_size: int = 1024,
        factor: np.ndarray | None = None,
        diagnostics: dict[str, float] | None = None,
        calibrate_on: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.l2 = float(l2)
        self.trained = head
        self._calibration_set = calibrate_on
        self.model = head
        if calibrate_on is not None:
            if not len(calibrate_on[1]):
                raise ValueError("calibrating the biases needs at least one dev item")
            self.model = refit_bias(head, *calibrate_on, l2=self.l2)
        self._target_theta = self.model.theta(self.device)
        self.block_size = int(block_size)
        self._X = np.asarray(X_train)
        self._y = np.asarray(y_train, dtype=np.int64)
        self._theta = head.theta(self.device)
        self.n_classes = int(self._theta.shape[0])
        self.dim = int(self._theta.shape[1])
        self.n_params = self.n_classes * self.dim
        self._recalibration = None if calibrate_on is None else self._response(calibrate_on[0])

        Z = augmented(self._X, self.device)
        self.n = int(Z.shape[0])
        probs = torch.softmax(Z @ self._theta.T, dim=1)
        self._Z = Z
        self._R = softmax_residuals(Z, self._theta, to_tensor(self._y, torch.int64, self.device))
        self._G = (self._R[:, :, None] * Z[:, None, :]).reshape(self.n, self.n_params)
        if factor is not None:
            self._H = None
            self._L = to_tensor(factor, torch.float64, self.device)
            self.diagnostics = dict(diagnostics or {})
            return
        self._H = self._build_hessian(Z, probs)
        # λ_min ≥ l2 and λ_max ≤ the largest absolute row sum (Gershgorin): when that bound is
        # under max_condition no damping is needed, and the O(P³) eigendecomposition is skipped.
        bound = float(self._H.abs().sum(dim=1).max()) / self.l2 if self.l2 > 0 else np.inf
        if damping == "auto" and bound <= max_condition:
            lam, condition = 0.0, bound
        else:
            eig = torch.linalg.eigvalsh(self._H).cpu().numpy()
            lam = auto_damping(eig, max_condition) if damping == "auto" else float(damping)
            condition = float((eig.max() + lam) / (eig.min() + lam))
        if lam:
            self._H += lam * torch.eye(self.n_params, dtype=torch.float64, device=self.device)
        self._L = torch.linalg.cholesky(self._H)
        # an upper bound when the eigendecomposition was skipped, else the exact value
        self.diagnostics = {"damping": lam, "condition_number": condition}

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        y: np.ndarray,
        n_classes: int,
        *,
        l2: float,
        ids: np.ndarray | None = None,
        seed: int = 0,
        device: str | None = None,
        **options: Any,
    ) -> Self:
        """Solve the head to its optimum, then factorise its Hessian.

        The fit is deterministic, so ``ids`` and ``seed`` do not matter; ``options`` go to the
        constructor (``damping``, ``max_condition``, ``block_size``).
        """
        head = fit_logistic_head(X, y, n_classes, l2=l2, device=device)
        return cls(head, X, y, l2=l2, device=device, **options)

    def calibrated(self, X_dev: np.ndarray, y_dev: np.ndarray) -> ExactHeadInfluence:
        """This estimator serving the trained weights with biases re-fitted on the gold dev set
        (``calibration.refit_bias``); the Hessian factor is reused, nothing is refitted."""
        return ExactHeadInfluence(
            self.trained,
            self._X,
            self._y,
            l2=self.l2,
            device=str(self.device),
            block_size=self.block_size,
            factor=self.cholesky_factor(),
            diagnostics={**self.diagnostics, "dev_calibrated": 1.0},
            calibrate_on=(X_dev, np.asarray(y_dev, dtype=np.int64)),
        )

    @property
    def is_calibrated(self) -> bool:
        return self._calibration_set is not None

    def _response(self, X_dev: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The module docstring's A and K at the served model: how its dev-fitted biases
        respond when a removal moves the trained parameters."""
        Z = augmented(X_dev, self.device)
        p = torch.softmax(Z @ self._target_theta.T, dim=1)
        S = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        eye = torch.eye(self.n_classes, dtype=torch.float64, device=self.device)
        return S.mean(dim=0) + self.l2 * eye, torch.einsum("iab,ik->abk", S, Z[:, :-1]) / len(Z)

    def retrain_without(self, index: int) -> LogisticHead:
        """The served model without training item ``index``: the optimum without it (warm-started
        from the full optimum), its biases re-fitted on dev again when this one's were."""
        head = fit_without(
            self._X,
            self._y,
            self.n_classes,
            index,
            l2=self.l2,
            init=self.trained,
            device=str(self.device),
        )
        if self._calibration_set is None:
            return head
        return refit_bias(head, *self._calibration_set, l2=self.l2)

    # ---- basic pieces -------------------------------------------------------------------

    def _grads_from(self, Z: torch.Tensor, y: np.ndarray) -> torch.Tensor:
        """Target gradients at the served model; when it is re-calibrated after each removal,
        the module docstring's u (the re-fitted biases' response folded in)."""
        R = softmax_residuals(Z, self._target_theta, to_tensor(y, torch.int64, self.device))
        G = R[:, :, None] * Z[:, None, :]
        if self._recalibration is not None:
            A, K = self._recalibration
            v = torch.linalg.solve(A, R.T).T
            G[:, :, :-1] -= torch.einsum("ma,abk->mbk", v, K)
            G[:, :, -1] = self.l2 * v
        return G.reshape(len(y), self.n_params)

    def _build_hessian(self, Z: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Accumulate Σ_i S_i ⊗ z_i z_iᵀ over row blocks (no per-item Python loop)."""
        C, D = self.n_classes, self.dim
        H = torch.zeros(C, D, C, D, dtype=torch.float64, device=self.device)
        rows = max(1, BLOCK_ELEMS // (C * C * D))
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
        """(H + λI)⁻¹ B for B of shape (P, m)."""
        return torch.cholesky_solve(B, self._L)

    # ---- exposed for checks -------------------------------------------------------------

    def hessian(self) -> np.ndarray:
        """The Hessian (P, P) of the training objective at the fitted head, plus damping."""
        H = self._H if self._H is not None else self._L @ self._L.T
        return H.cpu().numpy()

    def cholesky_factor(self) -> np.ndarray:
        """L with L Lᵀ = the damped Hessian: with the head, all a restored estimator needs."""
        return self._L.cpu().numpy()

    def gradients(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-example target gradients (m, P) w.r.t. the flattened parameters: cross-entropy
        gradients, taken as ``_grads_from`` takes them."""
        return self._grads_from(augmented(X, self.device), y).cpu().numpy()

    # ---- influence scores ---------------------------------------------------------------

    def self_influence(self, rows: slice = slice(None)) -> np.ndarray:
        """(1/n) u_iᵀ H⁻¹ g_i per training item: ≈ rise of its own loss if it were left out
        (u_i = g_i, or on a calibrated estimator the target gradient of its own loss).

        High values mark items the model can only fit by memorising them: suspicious labels.
        ``rows`` limits it to a range of training items (a scoring shard's).
        """
        start, stop, _ = rows.indices(self.n)
        out = torch.empty(stop - start, dtype=torch.float64, device=self.device)
        for sl in self._target_slices(stop - start):
            own = slice(start + sl.start, start + sl.stop)
            G = self._G[own]
            # the item's own loss as a target: at the served model, like every other target
            U = G if self._recalibration is None else self._grads_from(self._Z[own], self._y[own])
            out[sl] = (self._solve(U.T).T * G).sum(dim=1) / self.n
        return out.cpu().numpy()

    def dev_influence(
        self, X_dev: np.ndarray, y_dev: np.ndarray, rows: slice = slice(None)
    ) -> np.ndarray:
        """Influence of each training item on the mean dev loss (n,), or of those in ``rows``.

        ≈ mean_dev_loss(without j) - mean_dev_loss(with j); negative = removing j would lower
        the dev loss, i.e. j is harmful.
        """
        gbar = self._grads_from(augmented(X_dev, self.device), y_dev).mean(dim=0)
        v = self._solve(gbar[:, None])[:, 0]
        return (self._G[rows] @ v / self.n).cpu().numpy()

    def _blocks(self, X_t: np.ndarray, y_t: np.ndarray) -> Iterator[tuple[slice, torch.Tensor]]:
        X_t = np.asarray(X_t)
        y_t = np.asarray(y_t)
        for sl in self._target_slices(len(X_t)):
            Gt = self._grads_from(augmented(X_t[sl], self.device), y_t[sl])
            At = (self._solve(Gt.T).T / self.n).reshape(-1, self.n_classes, self.dim)
            # At·g_j = Σ_c r_jc (At_c·z_j), and Σ_c r_jc = 0 lets the last class be folded into
            # the others: one class fewer in the largest matmul (half of it for two classes).
            # The first (C-1)·D columns of G are exactly [r_jc z_j]_c, so one matmul does it.
            Dt = (At[:, :-1] - At[:, -1:]).reshape(len(Gt), -1)
            yield sl, Dt @ self._G[:, : Dt.shape[1]].T
