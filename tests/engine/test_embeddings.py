"""The encoder wrapper against sentence-transformers, and the on-disk embedding cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from workers.engine.embeddings import cached_embeddings, embed_texts, load_encoder

TEXTS = [
    "A warm, funny and beautifully acted film.",
    "The movie was a delight: charming, witty and well acted.",
    "Quarterly revenue of the steel company fell by four percent.",
    "ok",
    "An overlong, tedious mess that never finds its footing, despite a game cast "
    "and a premise that could have carried a much better picture than this one.",
]


@pytest.fixture(scope="module")
def embedded(encoder_path) -> np.ndarray:
    fractions: list[float] = []
    emb = embed_texts(TEXTS, encoder_path, device="cpu", batch_size=2, progress=fractions.append)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) == 3
    return emb


def test_shape_dtype_and_unit_norm(embedded):
    assert embedded.shape == (len(TEXTS), 384)
    assert embedded.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embedded, axis=1), 1.0, atol=1e-5)


def test_similar_sentences_are_closer_than_unrelated(embedded):
    cos = embedded @ embedded.T
    assert cos[0, 1] > cos[0, 2] + 0.3
    assert cos[1, 0] > cos[1, 2] + 0.3


def test_matches_sentence_transformers(embedded, encoder_path):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    ref = SentenceTransformer(encoder_path, device="cpu").encode(TEXTS, batch_size=64)
    np.testing.assert_allclose(embedded, ref, atol=2e-5)


def test_order_is_restored_after_length_sorting(embedded, encoder_path):
    perm = [3, 0, 4, 2, 1]
    again = embed_texts([TEXTS[i] for i in perm], encoder_path, device="cpu", batch_size=2)
    np.testing.assert_allclose(again, embedded[perm], atol=2e-5)


def test_empty_input(encoder_path):
    assert embed_texts([], encoder_path, device="cpu").shape == (0, 384)


def test_cache_hit_never_loads_the_model(encoder_path, tmp_path: Path):
    # A model path that stops existing after the first call: a second call can only succeed
    # by reading the cache.
    link = tmp_path / "encoder"
    link.symlink_to(encoder_path, target_is_directory=True)
    cache = tmp_path / "cache"
    first = cached_embeddings(TEXTS[:3], str(link), cache, device="cpu")
    link.unlink()
    load_encoder.cache_clear()  # and no copy of it kept in this process
    second = cached_embeddings(TEXTS[:3], str(link), cache, device="cpu")
    np.testing.assert_array_equal(first, second)
    assert [p.suffix for p in cache.iterdir()] == [".npy"]  # no temp files left behind
    with pytest.raises(OSError):  # different texts are a miss and need the (gone) model
        cached_embeddings(TEXTS[:2], str(link), cache, device="cpu")
    with pytest.raises(OSError):  # so is a different truncation length
        cached_embeddings(TEXTS[:3], str(link), cache, device="cpu", max_length=32)
