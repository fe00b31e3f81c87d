"""Device resolution shared by the engine modules (CUDA when present, else CPU)."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Return ``device`` as a torch.device, defaulting to CUDA when it is available.

    Every public entry point takes an optional device so the same code runs on a laptop CPU
    and on a GPU worker without a configuration switch.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def to_tensor(
    a: ArrayLike | torch.Tensor, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Copy an array-like into a new tensor (inputs may be read-only views, e.g. from pandas)."""
    if isinstance(a, torch.Tensor):
        return a.to(device=device, dtype=dtype)
    return torch.tensor(np.asarray(a), dtype=dtype, device=device)
