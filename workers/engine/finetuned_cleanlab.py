"""cleanlab on a fine-tuned encoder: the better model where labels are wrong at random.

On labels flipped at random, every ranking over the frozen sentence vectors lands near cleanlab
on them: the head on those vectors is the limit. Fine-tuning the encoder itself (every
transformer layer and the head) in k folds and ranking by cleanlab's label quality on the
out-of-fold probabilities finds more of the flipped labels on the debates
(bench/finetuned_cleanlab.py, at 10% inspected: 12.9 points more on the speakers with the gold
dev rows in every fold's training, 7.5 without them; 11.2 on the parties without them), not on
Rotten Tomatoes' short snippets, where the fine-tuned folds barely beat the frozen vectors'
accuracy. It costs k
fine-tuning runs, minutes per thousand items on a CPU: ``ASSAY_FINETUNE`` turns it on (by
default only where a GPU is present), and ``cpu_estimate_s`` says what it would cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from cleanlab.rank import get_label_quality_scores

from ._device import resolve_device
from .baselines import CLEANLAB_METHOD, CleanlabResult, loss_scores, stratified_folds
from .finetune import FineTunedClassifier, fit_finetuned_classifier

FINETUNED_CLEANLAB = "cleanlab_finetuned"
FineTuneMode = Literal["auto", "on", "off"]


def finetunes(mode: FineTuneMode, device: str | None) -> bool:
    """Whether a job fine-tunes: ``on``, or ``auto`` on a CUDA device (where the k fine-tuning
    runs are quick; on a CPU they take minutes per thousand items)."""
    return mode == "on" or (mode == "auto" and resolve_device(device).type == "cuda")


@dataclass(frozen=True)
class FoldFineTuning:
    """How each fold's encoder is fine-tuned; the defaults are bench/finetuned_cleanlab.py's
    (chosen on seeds 11 and 12 of the debates)."""

    folds: int = 5
    epochs: int = 3
    lr: float = 5e-5
    max_length: int = 128
    batch_size: int = 16

    def item_epochs(self, n_items: int, n_gold: int = 0) -> int:
        """Items trained on, summed over the fold runs' epochs, for ``n_items`` and ``n_gold``
        gold dev rows that join every fold's training: each of the folds trains (folds - 1) /
        folds of the items and the gold rows for ``epochs`` epochs, so (n x (folds - 1) + gold
        x folds) x epochs."""
        return (n_items * (self.folds - 1) + n_gold * self.folds) * self.epochs

    def cpu_estimate_s(
        self, n_items: int, cpu_s_per_1000_item_epochs: float, n_gold: int = 0
    ) -> float:
        """Seconds the fold runs would take (``item_epochs``) on a CPU that fine-tunes at
        ``cpu_s_per_1000_item_epochs``."""
        return cpu_s_per_1000_item_epochs * self.item_epochs(n_items, n_gold) / 1000

    def fit(
        self,
        texts: Sequence[str],
        y: np.ndarray,
        n_classes: int,
        *,
        l2: float,
        seed: int = 0,
        encoder_path: str | None = None,
        device: str | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> FineTunedClassifier:
        """One fine-tuning run with these settings (every transformer layer and the head)."""
        return fit_finetuned_classifier(
            list(texts),
            y,
            n_classes,
            encoder_path=encoder_path,
            train_layers="all",
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            max_length=self.max_length,
            l2=l2,
            seed=seed,
            device=device,
            progress=progress,
        )


def finetuned_cleanlab(
    texts: Sequence[str],
    y: np.ndarray,
    n_classes: int,
    *,
    config: FoldFineTuning,
    l2: float,
    seed: int = 0,
    gold: tuple[Sequence[str], np.ndarray] | None = None,
    encoder_path: str | None = None,
    device: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> CleanlabResult:
    """cleanlab's label-quality ranking (suspicion = 1 - quality), shaped like the frozen run's
    result, on (n, k) out-of-fold probabilities: each item's from the encoder fine-tuned
    without its fold (``stratified_folds``: at 5 folds and the same seed, the folds of
    cleanlab's frozen run). ``gold`` (texts, labels: a gold dev set) joins every fold's
    training: rows known to be right teach each fold's model the true classes and dilute the
    noise it learns, and are never ranked themselves. ``progress`` gets the share of the fold
    runs done, within runs too."""
    texts = np.asarray(list(texts), dtype=object)
    y = np.asarray(y, dtype=np.int64)
    gold_texts = np.asarray([] if gold is None else list(gold[0]), dtype=object)
    gold_y = np.asarray([] if gold is None else gold[1], dtype=np.int64)
    fold = stratified_folds(y, config.folds, seed)
    probs = np.empty((len(y), n_classes), dtype=np.float64)
    folds = np.unique(fold)

    def within(done: int) -> Callable[[float], None] | None:
        if progress is None:
            return None
        return lambda fraction: progress((done + fraction) / len(folds))

    for done, f in enumerate(folds):
        held = fold == f
        model = config.fit(
            np.concatenate([texts[~held], gold_texts]),
            np.concatenate([y[~held], gold_y]),
            n_classes,
            l2=l2,
            seed=seed,
            encoder_path=encoder_path,
            device=device,
            progress=within(done),
        )
        probs[held] = model.predict_proba(list(texts[held]))
    quality = get_label_quality_scores(y, probs, method=CLEANLAB_METHOD)
    cv_log_loss = {float(l2): float(loss_scores(probs, y).mean())}
    return CleanlabResult(1.0 - quality, probs, fold, float(l2), CLEANLAB_METHOD, cv_log_loss)
