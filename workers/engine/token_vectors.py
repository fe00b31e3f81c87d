"""Contextual token vectors for sequence tagging, from the same frozen encoder as sentences.

A word's vector is the mean of its subwords' last hidden states: the tagging head sees one
vector per word whatever the tokenizer does. Sentences longer than the encoder's window are
encoded in consecutive pieces of whole words, so no word is ever cut off.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ._device import resolve_device
from .embeddings import load_encoder


def _pieces(counts: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Word ranges [a, b) whose subword counts sum to at most ``budget`` (a longer word alone)."""
    out, start, used = [], 0, 0
    for j, c in enumerate(counts):
        if used + c > budget and j > start:
            out.append((start, j))
            start, used = j, 0
        used += c
    out.append((start, len(counts)))
    return out


def embed_tokens(
    sentences: Sequence[Sequence[str]],
    model_name_or_path: str,
    *,
    device: str | None = None,
    batch_size: int = 32,
    max_length: int = 256,
) -> list[np.ndarray]:
    """One float32 array (n_words, hidden) per sentence of pre-split words.

    A word the tokenizer turns into no subword at all (a stray control character) gets zeros.
    """
    dev = resolve_device(device)
    tokenizer, model = load_encoder(model_name_or_path, str(dev))
    dim = int(model.config.hidden_size)
    budget = max_length - tokenizer.num_special_tokens_to_add()
    pieces: list[tuple[int, int, int]] = []  # (sentence, first word, end word)
    for i, words in enumerate(sentences):
        if words:
            counts = [len(tokenizer.tokenize(w)) for w in words]
            pieces += [(i, a, b) for a, b in _pieces(counts, budget)]
    out = [np.zeros((len(words), dim), dtype=np.float32) for words in sentences]
    with torch.inference_mode():
        for s in range(0, len(pieces), batch_size):
            batch = pieces[s : s + batch_size]
            enc = tokenizer(
                [list(sentences[i][a:b]) for i, a, b in batch],
                is_split_into_words=True,
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = model(**enc.to(dev)).last_hidden_state.float()
            for r, (i, a, b) in enumerate(batch):
                ids = torch.tensor([-1 if w is None else w for w in enc.word_ids(r)], device=dev)
                keep = ids >= 0
                sums = torch.zeros(b - a, dim, device=dev).index_add_(0, ids[keep], hidden[r][keep])
                n = torch.bincount(ids[keep], minlength=b - a).clamp(min=1)
                out[i][a:b] = (sums / n[:, None]).cpu().numpy()
    return out
