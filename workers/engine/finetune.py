"""The second model mode: a sentence encoder whose top layers are fine-tuned with a linear head.

Only the top ``train_layers`` transformer layers and the head are trained, so the frozen part
(embeddings and lower layers) runs once per text: its output is cached and every epoch, every
retraining and every influence computation starts from it. That is what makes fine-tuning a
few hundred texts take seconds on a CPU.

Training objective (the one ``estimators.ihvp`` differentiates), per mini-batch B:

    J_B(θ) = Σ_{i∈B} w_i CE_i(θ) / |B|  +  (l2/2) (||θ_layers - θ_pretrained||² + ||head||²)

whose average over an epoch is the mean cross-entropy plus the penalty. It is minimised with
AdamW (weight_decay=0: the decay is the explicit L2-SP term, so the objective and its Hessian
are well defined) over seeded batches. Weights only scale terms, never change batches, so
w_j = 0 removes item j and leaves every other step as it was. The head starts at the
convex optimum on the frozen sentence vectors (linear probe, then fine-tune: Kumar et al. 2022),
which lets one small learning rate suit head and encoder alike. Dropout is off: influence
functions analyse a deterministic objective, and the model trained must be the one analysed.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from ._device import resolve_device, to_tensor
from .embeddings import default_encoder_path, embedding_cache_key, mean_pool
from .head import fit_logistic_head

TrainLayers = int | Literal["all"]


@dataclass(frozen=True)
class FineTuneConfig:
    """Everything that determines a fine-tuning run besides the data (seeded: reproducible)."""

    encoder_path: str
    train_layers: TrainLayers = 2
    epochs: int = 3
    lr: float = 3e-5
    batch_size: int = 16
    max_length: int = 64
    l2: float = 1e-3
    seed: int = 0


@dataclass
class _Features:
    """Frozen-part output for a list of texts, padded to the longest: hidden (n, L, d)."""

    hidden: torch.Tensor
    mask: torch.Tensor
    lengths: np.ndarray

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``rows``, trimmed to their own longest text (less padding, less compute)."""
        width = int(self.lengths[rows].max())
        idx = torch.as_tensor(rows, device=self.hidden.device)
        return self.hidden[idx, :width], self.mask[idx, :width]


def _layer_output(out: Any) -> torch.Tensor:
    """Hidden states from a transformer layer (a tensor in transformers 5, a tuple before)."""
    return out[0] if isinstance(out, tuple) else out


def _additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(b, L) 0/1 attention mask as the (b, 1, 1, L) additive mask eager attention adds."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class _Top(nn.Module):
    """The trainable part: top transformer layers, mean pooling + L2 norm, linear head."""

    def __init__(self, layers: Sequence[nn.Module], head: nn.Linear) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.head = head

    def pooled(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ext = _additive_mask(mask, hidden.dtype)
        for layer in self.layers:
            hidden = _layer_output(layer(hidden, ext))
        return mean_pool(hidden, mask)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(hidden, mask))


class _Backbone:
    """Tokenizer and pretrained encoder, shared read-only by every model fine-tuned from them.

    Caches the frozen part's output per list of texts, so retraining without an item and
    scoring the training set never run the frozen layers again.
    """

    def __init__(
        self, encoder_path: str, train_layers: TrainLayers, max_length: int, device: torch.device
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        self.encoder_path = encoder_path
        self.max_length = max_length
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(encoder_path)
        # Eager attention: plain matmul/softmax, which torch.func.vmap batches (it runs SDPA on
        # the CPU one example at a time).
        self.encoder = AutoModel.from_pretrained(encoder_path, attn_implementation="eager")
        self.encoder.to(device).eval().requires_grad_(False)
        if not hasattr(self.encoder, "embeddings") or not hasattr(self.encoder, "encoder"):
            raise ValueError(f"{encoder_path}: expected a BERT-style encoder (embeddings, layers)")
        n_layers = len(self.encoder.encoder.layer)
        k = n_layers if train_layers == "all" else int(train_layers)
        if not 0 <= k <= n_layers:
            raise ValueError(f"train_layers must be 'all' or in 0..{n_layers}, got {k}")
        self.n_frozen = n_layers - k
        self._cache: dict[str, _Features] = {}

    def pretrained_top(self) -> list[nn.Module]:
        """The pretrained top layers; they stay untouched and anchor the L2-SP penalty."""
        return list(self.encoder.encoder.layer[self.n_frozen :])

    def features(self, texts: Sequence[str], batch_size: int = 64) -> _Features:
        key = embedding_cache_key(
            texts, f"{self.encoder_path}#frozen{self.n_frozen}", self.max_length
        )
        if key not in self._cache:
            self._cache[key] = self._encode(texts, batch_size)
        return self._cache[key]

    def _encode(self, texts: Sequence[str], batch_size: int) -> _Features:
        enc = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        enc = enc.to(self.device)
        ids, mask, types = enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids")
        lengths = mask.sum(dim=1).cpu().numpy()
        dim = int(self.encoder.config.hidden_size)
        hidden = torch.zeros(len(texts), ids.shape[1], dim, device=self.device)
        order = np.argsort(lengths, kind="stable")
        with torch.inference_mode():
            for s in range(0, len(texts), batch_size):
                rows = order[s : s + batch_size]
                width = int(lengths[rows].max())
                r = torch.as_tensor(rows, device=self.device)
                h = self.encoder.embeddings(
                    input_ids=ids[r, :width],
                    token_type_ids=None if types is None else types[r, :width],
                )
                ext = _additive_mask(mask[r, :width], h.dtype)
                for layer in self.encoder.encoder.layer[: self.n_frozen]:
                    h = _layer_output(layer(h, ext))
                hidden[r, :width] = h
        return _Features(hidden, mask, lengths)


class FineTunedClassifier:
    """An encoder with fine-tuned top layers and a linear head, on top of a shared backbone.

    ``parameters()`` are the trainable tensors (top layers, then ``head.weight``/``head.bias``)
    and ``logits_fn`` is the model as a pure function of them, for torch.func.
    """

    def __init__(
        self, backbone: _Backbone, top: _Top, config: FineTuneConfig, n_classes: int
    ) -> None:
        self._backbone = backbone
        self._top = top
        self.config = config
        self.n_classes = n_classes
        self.device = backbone.device
        # Epoch-end snapshots (the last is this model), kept when training asked for them:
        # TracIn sums over the trajectory, not just its end.
        self.checkpoints: list[FineTunedClassifier] = []

    @property
    def l2(self) -> float:
        return self.config.l2

    def parameters(self) -> dict[str, torch.Tensor]:
        """The trainable parameters by name, detached (the point influence is computed at)."""
        return {k: v.detach() for k, v in self._top.named_parameters()}

    def logits_fn(
        self, params: dict[str, torch.Tensor], hidden: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Logits (b, C) of frozen-part outputs ``hidden`` (b, L, d) under ``params``."""
        return functional_call(self._top, params, (hidden, mask))

    def batches(
        self, texts: Sequence[str], batch_size: int = 64
    ) -> Iterator[tuple[np.ndarray, tuple[torch.Tensor, torch.Tensor]]]:
        """Length-sorted batches ``(rows, (hidden, mask))`` of the frozen part's output."""
        feats = self._backbone.features(texts)
        order = np.argsort(feats.lengths, kind="stable")
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            yield rows, feats.batch(rows)

    def logits(self, texts: Sequence[str]) -> torch.Tensor:
        """Raw class scores (n, C) on the model's device."""
        return self.head_inputs_and_logits(texts)[1]

    def head_inputs_and_logits(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Sentence vectors (n, d) that the linear head reads, and its logits (n, C).

        The head's per-example gradient is a function of these two alone (last-layer TracIn).
        """
        dim = self._top.head.in_features
        vectors = torch.empty(len(texts), dim, device=self.device)
        out = torch.empty(len(texts), self.n_classes, device=self.device)
        with torch.inference_mode():
            for rows, (hidden, mask) in self.batches(texts):
                r = torch.as_tensor(rows, device=self.device)
                vectors[r] = self._top.pooled(hidden, mask)
                out[r] = self._top.head(vectors[r])
        return vectors, out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (n, C), float64."""
        return torch.softmax(self.logits(texts).double(), dim=1).cpu().numpy()

    def log_loss(self, texts: Sequence[str], y: np.ndarray) -> np.ndarray:
        """Per-example cross-entropy (n,) at labels ``y``, float64."""
        yt = to_tensor(y, torch.int64, self.device)
        ce = nn.functional.cross_entropy(self.logits(texts).double(), yt, reduction="none")
        return ce.cpu().numpy()

    def retrained(
        self,
        texts: Sequence[str],
        y: np.ndarray,
        *,
        sample_weight: np.ndarray | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> FineTunedClassifier:
        """The same procedure (config, seed, pretrained start) on new data or weights.

        Shares the backbone and its cached frozen outputs, so it costs the training only.
        A zero ``sample_weight`` removes exactly that item's terms from every batch it is in.
        """
        return _train(
            self._backbone,
            texts,
            y,
            self.n_classes,
            self.config,
            sample_weight=sample_weight,
            progress=progress,
        )


def _penalty(top: _Top, anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """||θ - θ_anchor||² over the trainable parameters (the head's anchor is zero)."""
    total = torch.zeros((), device=top.head.weight.device)
    for name, p in top.named_parameters():
        a = anchor.get(name)
        total = total + ((p - a) ** 2).sum() if a is not None else total + (p**2).sum()
    return total


def _epoch_batches(
    rng: np.random.Generator, lengths: np.ndarray, batch_size: int
) -> list[np.ndarray]:
    """A seeded shuffle cut into batches of similar lengths, in random order.

    Sorting by length within groups of 8 batches cuts padding (most of the CPU time for short
    texts) while batch composition still changes every epoch.
    """
    order = rng.permutation(len(lengths))
    group = 8 * batch_size
    for s in range(0, len(order), group):
        chunk = order[s : s + group]
        order[s : s + group] = chunk[np.argsort(lengths[chunk], kind="stable")]
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _train(
    backbone: _Backbone,
    texts: Sequence[str],
    y: np.ndarray,
    n_classes: int,
    config: FineTuneConfig,
    *,
    sample_weight: np.ndarray | None,
    progress: Callable[[float], None] | None,
    keep_checkpoints: bool = False,
) -> FineTunedClassifier:
    dev = backbone.device
    n = len(texts)
    y = np.asarray(y, dtype=np.int64)
    w_np = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    feats = backbone.features(texts)
    pretrained = backbone.pretrained_top()
    head = nn.Linear(backbone.encoder.config.hidden_size, n_classes)
    top = _Top(copy.deepcopy(pretrained), head).to(dev).eval()
    anchor = {
        f"layers.{i}.{k}": v
        for i, layer in enumerate(pretrained)
        for k, v in layer.named_parameters()
    }
    clf = FineTunedClassifier(backbone, top, config, n_classes)

    # Linear probe: the head's optimum on the pretrained sentence vectors.
    X = np.empty((n, head.in_features), dtype=np.float32)
    with torch.inference_mode():
        for rows, batch in clf.batches(texts):
            X[rows] = top.pooled(*batch).cpu().numpy()
    probe = fit_logistic_head(X, y, n_classes, l2=config.l2, sample_weight=w_np, device=str(dev))
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(probe.weight))
        head.bias.copy_(torch.from_numpy(probe.bias))
    top.requires_grad_(True)

    yt = to_tensor(y, torch.int64, dev)
    wt = to_tensor(w_np, torch.float32, dev)
    opt = torch.optim.AdamW(top.parameters(), lr=config.lr, weight_decay=0.0)
    rng = np.random.default_rng(config.seed)
    steps = config.epochs * -(-n // config.batch_size)
    done = 0
    for epoch in range(config.epochs):
        for rows in _epoch_batches(rng, feats.lengths, config.batch_size):
            r = torch.as_tensor(rows, device=dev)
            ce = nn.functional.cross_entropy(top(*feats.batch(rows)), yt[r], reduction="none")
            loss = (wt[r] * ce).sum() / len(rows) + 0.5 * config.l2 * _penalty(top, anchor)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if progress is not None:
                progress(done / steps)
        if keep_checkpoints and epoch < config.epochs - 1:
            snapshot = copy.deepcopy(top).requires_grad_(False)
            clf.checkpoints.append(FineTunedClassifier(backbone, snapshot, config, n_classes))
    top.requires_grad_(False)
    if keep_checkpoints:
        clf.checkpoints.append(clf)
    return clf


def fit_finetuned_classifier(
    texts: Sequence[str],
    y: np.ndarray,
    n_classes: int,
    *,
    encoder_path: str | None = None,
    train_layers: TrainLayers = 2,
    epochs: int = 3,
    lr: float = 3e-5,
    batch_size: int = 16,
    max_length: int = 64,
    l2: float = 1e-3,
    seed: int = 0,
    sample_weight: np.ndarray | None = None,
    device: str | None = None,
    progress: Callable[[float], None] | None = None,
    keep_checkpoints: bool = False,
) -> FineTunedClassifier:
    """Fine-tune the top ``train_layers`` layers ("all": every transformer layer, embeddings
    stay frozen; 0: head only) of ``encoder_path`` (default: the bundled all-MiniLM-L6-v2)
    with a linear head, on ``device`` (default: CUDA when available).

    The objective and procedure are in the module docstring; equal arguments give equal
    models. ``sample_weight`` 0 drops an item (``ihvp``'s leave-one-out ground truth).
    ``keep_checkpoints`` keeps a snapshot at every epoch's end in ``.checkpoints``.
    """
    config = FineTuneConfig(
        encoder_path=encoder_path or default_encoder_path(),
        train_layers=train_layers,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        max_length=max_length,
        l2=l2,
        seed=seed,
    )
    backbone = _Backbone(config.encoder_path, train_layers, max_length, resolve_device(device))
    return _train(
        backbone,
        texts,
        y,
        n_classes,
        config,
        sample_weight=sample_weight,
        progress=progress,
        keep_checkpoints=keep_checkpoints,
    )
