"""Re-fitting a trained head's class biases on the gold dev set (prior correction).

Why: silver labels from a heuristic such as VADER can skew the class balance (27% of the
Rotten Tomatoes extension labelled rotten, against 42% in truth), and a head trained on them
inherits the skew in its biases: it predicts rotten for about one test snippet in seven, and
macro-F1 falls. The weights still separate the classes; re-fitting only the C biases on the
gold dev set, by cross-entropy, puts the decision boundary back where the gold labels want it.
The served model is then the trained weights with these biases, and influence is taken on that
model's loss (``ExactHeadInfluence.calibrated``).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from .head import LogisticHead, fit_logistic_head


def refit_bias(
    head: LogisticHead, X_dev: np.ndarray, y_dev: np.ndarray, *, l2: float
) -> LogisticHead:
    """The head with its biases minimising mean dev cross-entropy + (l2/2)·||b - b_trained||².

    The weights stay as trained. The small pull towards the trained biases keeps the problem
    strictly convex (softmax biases are otherwise free up to a constant) and finite when a
    class is missing from the dev set. At the optimum the mean predicted probability of each
    class on dev equals its dev frequency, up to that pull.
    """
    y = np.asarray(y_dev, dtype=np.int64)
    scores = np.asarray(X_dev, dtype=np.float64) @ head.weight.T
    onehot = np.eye(head.n_classes)[y]
    start = head.bias.astype(np.float64)

    def objective(bias: np.ndarray) -> tuple[float, np.ndarray]:
        z = scores + bias
        top = z.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
        probs = np.exp(z - log_norm[:, None])
        shift = bias - start
        loss = float((log_norm - z[np.arange(len(y)), y]).mean() + 0.5 * l2 * shift @ shift)
        return loss, (probs - onehot).mean(axis=0) + l2 * shift

    found = minimize(
        objective, start, jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 0.0}
    )
    return LogisticHead(weight=head.weight, bias=found.x)


def fit_served_head(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    l2: float,
    sample_weight: np.ndarray | None = None,
    calibrate_on: tuple[np.ndarray, np.ndarray] | None = None,
    device: str | None = None,
) -> LogisticHead:
    """The head as it is served: fitted, then (given ``calibrate_on`` = (X_dev, y_dev)) its
    biases re-fitted there; what every model that is compared with the served one must be."""
    head = fit_logistic_head(X, y, n_classes, l2=l2, sample_weight=sample_weight, device=device)
    return head if calibrate_on is None else refit_bias(head, *calibrate_on, l2=l2)
