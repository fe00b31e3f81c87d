"""Shared machinery for estimators whose (targets x train) matrix is computed in torch blocks.

Keeping the blocks as tensors until the end lets ``top_k`` run ``torch.topk`` on the device
(GPU when present) instead of copying every full block to numpy and sorting it there.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator

import numpy as np
import torch

from .base import FittableEstimator, TopK

# Upper bound on float64 elements of one targets x train block (256 MiB).
BLOCK_ELEMS = 1 << 25


class BlockedEstimator(FittableEstimator):
    """Subclasses set ``device``, ``n`` (training items) and ``block_size`` and implement
    ``_blocks``; ``influence`` and ``top_k`` follow from it."""

    device: torch.device
    n: int
    block_size: int

    @abstractmethod
    def _blocks(self, X_t: np.ndarray, y_t: np.ndarray) -> Iterator[tuple[slice, torch.Tensor]]:
        """Yield ``(target_slice, block)``, block[r, j] = influence(j → target slice.start+r)."""

    def _rows_per_block(self, width: int = 1) -> int:
        """Target rows per block so that one block of ``width`` floats per pair fits."""
        return max(1, min(self.block_size, BLOCK_ELEMS // max(self.n * width, 1)))

    def _target_slices(self, m: int, width: int = 1) -> Iterator[slice]:
        rows = self._rows_per_block(width)
        for s in range(0, m, rows):
            yield slice(s, min(s + rows, m))

    def influence(self, X_t: np.ndarray, y_t: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
        """Stream the (targets x train) influence matrix in row blocks of targets.

        Yields ``(target_slice, block)`` with block[r, j] = influence(j → target slice.start+r).
        """
        for sl, block in self._blocks(X_t, y_t):
            yield sl, block.cpu().numpy()

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
