"""A second judge for patterned silver errors: an encoder fine-tuned on the gold rows alone.

Where the noise check finds the silver errors patterned, influence on the gold dev set is
served, and each item's harm is weighted by a head on the frozen vectors trained on the gold
rows (``expected_gain``). Where fine-tuning is on, one more run is cheap beside the fold runs:
the encoder fine-tuned on the gold rows only (a few hundred items: under a minute on a CPU)
never saw the pattern, and its disbelief in each silver label, rank-averaged with the served
influence (its ranks weighted ``ASSAY_GOLD_FINETUNED_WEIGHT``, 0.67), finds more of the wrong
labels (bench/finetuned_cleanlab.py, found at 10%, on fresh seeds 40-42 where the check calls
the noise patterned): Rotten Tomatoes' confusable flips 0.313 -> 0.422, its lexicon-rule silver
labels 0.190 -> 0.231, the debates' party confusable flips 0.205 -> 0.252. The average was
chosen on seeds 11 and 12 over the judge alone, which found more on the lexicon labels but
fewer on the confusable flips; its weight on seeds 11-14 (README, "The second judge").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .finetuned_cleanlab import FoldFineTuning
from .ranking import percentile


def gold_finetuned_disbelief(
    texts: Sequence[str],
    y: np.ndarray,
    gold: tuple[Sequence[str], np.ndarray],
    n_classes: int,
    *,
    config: FoldFineTuning,
    l2: float,
    seed: int = 0,
    encoder_path: str | None = None,
    device: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """(n,) ``1 - p(y)``: how little the encoder fine-tuned (``config``'s settings, one run) on
    the ``gold`` rows (texts, labels) alone believes each label ``y`` of ``texts``."""
    gold_texts, gold_y = gold
    model = config.fit(
        list(gold_texts),
        np.asarray(gold_y, dtype=np.int64),
        n_classes,
        l2=l2,
        seed=seed,
        encoder_path=encoder_path,
        device=device,
        progress=progress,
    )
    probs = model.predict_proba(list(texts))
    return 1.0 - probs[np.arange(len(y)), np.asarray(y, dtype=np.int64)]


def rank_average(*suspicions: np.ndarray, weights: Sequence[float] | None = None) -> np.ndarray:
    """The (``weights``-weighted) mean of the rankings' percentile ranks: a combination on one
    scale whatever each ranking's own units (harm to a loss, a probability)."""
    return np.average([percentile(s) for s in suspicions], axis=0, weights=weights)
