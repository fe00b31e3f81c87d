"""Inverse-Hessian influence for the fine-tuned encoder ("ihvp"), solved exactly in sample space.

influence(j → t) = (1/n) ∇L_tᵀ (G + δI)⁻¹ ∇L_j ≈ loss_t(trained without j) - loss_t(trained with j)

over the trainable parameters θ (top layers + head, P of them), with the sign convention of
``base.InfluenceEstimator``. G is the Gauss-Newton Hessian of the mean cross-entropy and
δ = l2 + λ: l2 is the Hessian of the model's L2 penalty, λ extra damping chosen below.

Why Gauss-Newton, and why no conjugate gradient. G = (1/n) Σ_i J_iᵀ S_i J_i (J_i: Jacobian of
example i's logits, S_i = diag(p_i) - p_i p_iᵀ) is the Hessian without the term weighted by the
residuals, which is indefinite away from an optimum; a few epochs of fine-tuning never reach
one. G is positive semi-definite, equals the Hessian for a linear head, and is what influence
functions on networks are usually taken to mean (Bae et al. 2022, "If influence functions are
the answer, then what is the question?"). It also has rank ≤ n(C-1) ≪ P. Writing
G = AᵀA with A = W Φ / √n, Φ the (n(C-1), P) Jacobian of the logits projected on a basis V of
1^⊥ (CE ignores a shift of all logits) and W = blockdiag((Vᵀ S_i V)^½), Woodbury gives

    (AᵀA + δI)⁻¹ = (I - Aᵀ (K + δI)⁻¹ A) / δ,      K = A Aᵀ = W Θ W / n,  Θ = Φ Φᵀ,

an exact inverse-Hessian-vector product for any vector from one n(C-1)-sized eigensolve. Every
query needs only Φ·∇L_t: gradients of train items are Φ_jᵀ c_j (c_j = Vᵀ(p_j - onehot(y_j))),
so self-influence and the train x train matrix come from Θ alone, and a dev set costs one
gradient. Conjugate gradient would need tens of Hessian-vector products per target; measured
on two CPU cores (300 texts, two MiniLM layers), one product over the training set costs 37%
of building this whole estimator, so CG would cost ~10 builds per target, n for self-influence.

Captum does not serve either: ``NaiveInfluenceFunction`` forms the P x P Hessian (P ≈ 3.5M for
two layers) and ``ArnoldiInfluenceFunction`` runs ~200 (``arnoldi_dim``) products of the full,
indefinite Hessian and drops everything outside its top eigenvectors. The tests use Captum's
naive version as an oracle for sign and scale: it inverts the Hessian of the *summed* loss plus
``hessian_reg``, so with hessian_reg = n·δ its scores equal these.

Damping: λ = ``damping_ratio`` x the top eigenvalue of G (exact here: the top eigenvalue of K),
reported in ``diagnostics`` with the condition number it leaves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, Literal, Protocol, Self

import numpy as np
import torch
from torch.func import grad, jacrev, vmap

from .._device import to_tensor
from .blocked import BlockedEstimator

DEFAULT_DAMPING_RATIO = 1e-3
# Φ is kept in memory (float32: 4·n·(C-1)·P bytes); refuse beyond this instead of swapping.
DEFAULT_MAX_GIB = 8.0

Params = dict[str, torch.Tensor]


class FunctionalClassifier(Protocol):
    """A classifier differentiable in its trainable parameters (``FineTunedClassifier``).

    ``batches(X)`` yields ``(rows, inputs)``: rows of X and the tensors that
    ``logits_fn(params, *inputs)`` maps to (b, C) logits. ``l2`` is the coefficient of the
    model's (l2/2)·||θ - anchor||² training penalty.
    """

    n_classes: int
    l2: float

    def parameters(self) -> Params: ...

    def logits_fn(self, params: Params, *inputs: torch.Tensor) -> torch.Tensor: ...

    def batches(
        self, X: Any, batch_size: int
    ) -> Iterator[tuple[np.ndarray, tuple[torch.Tensor, ...]]]: ...

    def predict_proba(self, X: Any) -> np.ndarray: ...

    def log_loss(self, X: Any, y: np.ndarray) -> np.ndarray: ...

    def retrained(
        self, X: Any, y: np.ndarray, *, sample_weight: np.ndarray | None = None
    ) -> FunctionalClassifier: ...


def _flat(tree: Params, lead: int) -> torch.Tensor:
    """Concatenate a dict of (*lead dims, *shape) tensors into (*lead dims, P)."""
    return torch.cat([v.reshape(*v.shape[:lead], -1) for v in tree.values()], dim=-1)


def _centred_basis(n_classes: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Orthonormal (C, C-1) basis of the logit directions orthogonal to the all-ones vector."""
    M = torch.eye(n_classes, dtype=torch.float64)
    M[:, 0] = 1.0
    Q, _ = torch.linalg.qr(M)
    return Q[:, 1:].to(device=device, dtype=dtype)


class IHVPInfluence(BlockedEstimator):
    """Damped Gauss-Newton influence functions over a model's trainable parameters.

    ``model`` must be the model trained on exactly ``(X_train, y_train)``. ``damping`` "auto"
    sets λ = ``damping_ratio`` x top eigenvalue of G; a number fixes λ. ``grad_batch_size``
    examples at a time go through ``vmap`` (memory ≈ that many copies of the parameters).
    """

    name = "ihvp"

    def __init__(
        self,
        model: FunctionalClassifier,
        X_train: Sequence[Any] | np.ndarray,
        y_train: np.ndarray,
        *,
        damping: float | Literal["auto"] = "auto",
        damping_ratio: float = DEFAULT_DAMPING_RATIO,
        grad_batch_size: int = 16,
        max_gib: float = DEFAULT_MAX_GIB,
        block_size: int = 1024,
    ) -> None:
        t0 = time.perf_counter()
        self.model = model
        self._params = model.parameters()
        first = next(iter(self._params.values()))
        self.device = first.device
        self.dtype = first.dtype
        self.block_size = int(block_size)
        self.grad_batch_size = int(grad_batch_size)
        self._X = X_train
        self._y = np.asarray(y_train, dtype=np.int64)
        self.n = len(self._y)
        C = int(model.n_classes)
        self.n_params = sum(v.numel() for v in self._params.values())
        gib = self.n * (C - 1) * self.n_params * first.element_size() / 2**30
        if gib > max_gib:
            raise MemoryError(
                f"ihvp keeps the {self.n}x{C - 1} x {self.n_params} Jacobian ({gib:.1f} GiB > "
                f"max_gib={max_gib}): train fewer layers, score fewer items, or raise max_gib"
            )
        self._V = _centred_basis(C, self.dtype, self.device)

        Phi, probs = self._jacobians()  # (n, C-1, P), (n, C)
        p = probs.double()
        items = torch.arange(self.n, device=self.device)
        resid = p.clone()
        resid[items, to_tensor(self._y, torch.int64, self.device)] -= 1.0
        V64 = self._V.double()
        c = resid @ V64  # (n, C-1): ∇L_j = Φ_jᵀ c_j
        S = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        evals, evecs = torch.linalg.eigh(V64.T @ S @ V64)
        Wsqrt = evecs @ torch.diag_embed(evals.clamp(min=0).sqrt()) @ evecs.mT  # (n, C-1, C-1)

        self._Phi = Phi.reshape(self.n * (C - 1), self.n_params)
        Theta = (self._Phi @ self._Phi.T).double()
        N = self._Phi.shape[0]
        W = torch.zeros(N, N, dtype=torch.float64, device=self.device)  # blockdiag(Wsqrt)/√n
        W.view(self.n, C - 1, self.n, C - 1)[items, :, items, :] = Wsqrt / np.sqrt(self.n)
        E = torch.zeros(N, self.n, dtype=torch.float64, device=self.device)  # c_j in j's rows
        E.view(self.n, C - 1, self.n)[items, :, items] = c
        mu, U = torch.linalg.eigh(W @ Theta @ W)  # eigenvalues of K = those of G (nonzero)
        top = float(mu[-1].clamp(min=0))
        lam = damping_ratio * top if damping == "auto" else float(damping)
        self.damping = float(model.l2) + lam
        # (K + δI)⁻¹ from the eigendecomposition; R maps Φ∇L_t to the influence row of t.
        WQW = W @ U @ torch.diag(1.0 / (mu.clamp(min=0) + self.damping)) @ U.T @ W
        self._ThetaE = Theta @ E  # column j: Φ ∇L_j
        self._R = (E - WQW @ self._ThetaE) / (self.n * self.damping)
        self._WQW = WQW
        self.diagnostics = {
            "damping": lam,
            "l2": float(model.l2),
            "top_eigenvalue": top,
            "condition_number": (top + self.damping) / self.damping,
            "n_params": float(self.n_params),
            "jacobian_gib": gib,
            "seconds": time.perf_counter() - t0,
        }

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
        """Fine-tune on texts ``X`` (``fit_finetuned_classifier``; options named like its
        arguments go there, the rest to the constructor) and build the estimator on it.
        ``ids`` are not needed: batches follow ``seed``."""
        from ..finetune import FineTuneConfig, fit_finetuned_classifier

        fields = FineTuneConfig.__dataclass_fields__
        tune = {k: options.pop(k) for k in list(options) if k in fields}
        model = fit_finetuned_classifier(
            list(X), y, n_classes, l2=l2, seed=seed, device=device, **tune
        )
        return cls(model, X, y, **options)

    def retrain_without(self, index: int) -> FunctionalClassifier:
        """The same fine-tuning run (seed, batches, start) with item ``index`` weighted 0."""
        w = np.ones(self.n)
        w[index] = 0.0
        return self.model.retrained(self._X, self._y, sample_weight=w)

    # ---- derivatives ------------------------------------------------------------------

    def _jacobians(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per training item: Jacobian of Vᵀ logits (n, C-1, P) and probabilities (n, C)."""
        V, f = self._V, self.model.logits_fn

        def out(params: Params, *ex: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            z = f(params, *(e.unsqueeze(0) for e in ex))[0]
            return z @ V, z

        C = self._V.shape[0]
        Phi = torch.empty(self.n, C - 1, self.n_params, dtype=self.dtype, device=self.device)
        logits = torch.empty(self.n, C, dtype=self.dtype, device=self.device)
        for rows, inputs in self.model.batches(self._X, self.grad_batch_size):
            dims = (None, *[0] * len(inputs))
            jac, z = vmap(jacrev(out, has_aux=True), in_dims=dims)(self._params, *inputs)
            r = torch.as_tensor(rows, device=self.device)
            Phi[r] = _flat(jac, 2)
            logits[r] = z
        return Phi, torch.softmax(logits, dim=1)

    def gradients(self, X: Sequence[Any] | np.ndarray, y: np.ndarray) -> torch.Tensor:
        """Per-example cross-entropy gradients (m, P) over the trainable parameters."""
        f = self.model.logits_fn

        def loss(params: Params, label: torch.Tensor, *ex: torch.Tensor) -> torch.Tensor:
            z = f(params, *(e.unsqueeze(0) for e in ex))
            return torch.nn.functional.cross_entropy(z, label.unsqueeze(0))

        yt = to_tensor(y, torch.int64, self.device)
        out = torch.empty(len(yt), self.n_params, dtype=self.dtype, device=self.device)
        for rows, inputs in self.model.batches(X, self.grad_batch_size):
            r = torch.as_tensor(rows, device=self.device)
            dims = (None, 0, *[0] * len(inputs))
            out[r] = _flat(vmap(grad(loss), in_dims=dims)(self._params, yt[r], *inputs), 1)
        return out

    def ihvp(self, v: torch.Tensor) -> torch.Tensor:
        """(G + δI)⁻¹ v for vectors v (P,) or (P, m) over the flattened parameters."""
        v64 = v.to(torch.float64)
        proj = (self._Phi @ v.to(self.dtype)).double()
        back = (self._Phi.T @ (self._WQW @ proj).to(self.dtype)).double()
        return (v64 - back) / self.damping

    # ---- influence scores ---------------------------------------------------------------

    def _is_train(self, X_t: Any, y_t: np.ndarray) -> bool:
        return (
            len(y_t) == self.n
            and np.array_equal(y_t, self._y)
            and np.array_equal(np.asarray(X_t), np.asarray(self._X))
        )

    def self_influence(self) -> np.ndarray:
        """(1/n) ∇L_jᵀ (G + δI)⁻¹ ∇L_j: ≈ rise of j's own loss if it were left out."""
        return (self._ThetaE * self._R).sum(dim=0).cpu().numpy()

    def dev_influence(self, X_dev: Any, y_dev: np.ndarray) -> np.ndarray:
        """Influence on the mean dev loss (n,), from one mean gradient (no per-example pass)."""
        yt = to_tensor(y_dev, torch.int64, self.device)
        params = {k: v.clone().requires_grad_(True) for k, v in self._params.items()}
        for rows, inputs in self.model.batches(X_dev, 64):
            z = self.model.logits_fn(params, *inputs)
            r = torch.as_tensor(rows, device=self.device)
            loss = torch.nn.functional.cross_entropy(z, yt[r], reduction="sum") / len(yt)
            loss.backward()
        gbar = _flat({k: v.grad for k, v in params.items()}, 0)
        return ((self._Phi @ gbar).double() @ self._R).cpu().numpy()

    def _blocks(self, X_t: Any, y_t: np.ndarray) -> Iterator[tuple[slice, torch.Tensor]]:
        """Rows Φ∇L_t · R; for the training set itself Φ∇L_t is a column of ΘE, no gradients."""
        y_t = np.asarray(y_t, dtype=np.int64)
        X_arr = np.asarray(X_t)
        is_train = self._is_train(X_arr, y_t)
        for sl in self._target_slices(len(y_t)):
            if is_train:
                phi = self._ThetaE[:, sl]
            else:
                phi = (self._Phi @ self.gradients(X_arr[sl], y_t[sl]).T).double()
            yield sl, phi.T @ self._R
