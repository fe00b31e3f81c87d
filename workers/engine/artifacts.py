"""A trained model as named arrays, for the artifact file of a model version."""

from __future__ import annotations

import numpy as np

from .estimators import Classifier


def model_arrays(model: Classifier) -> dict[str, np.ndarray]:
    """The head's weight and bias, or a fine-tuned model's trainable parameters by name."""
    if hasattr(model, "weight") and hasattr(model, "bias"):
        return {"weight": np.asarray(model.weight), "bias": np.asarray(model.bias)}
    return {f"param:{name}": value.cpu().numpy() for name, value in model.parameters().items()}
