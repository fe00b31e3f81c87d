"""The two NER corpora of the detection benchmark, read from the project's copies, their entity
types mapped to a small shared set, and their token vectors cached under bench/.cache.

Types are merged so the exact Hessian stays small (its side is T·(d + T + 2) for T tags) and so
both corpora have the same shape of problem: persons, organisations, places, other names and
numeric expressions.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.kinds.sequence_tagging.formats import read_conll
from bench.common import BENCH_DIR, CACHE
from workers.engine import default_encoder_path
from workers.engine.embeddings import atomic_write
from workers.engine.token_vectors import embed_tokens

ENGLISH = BENCH_DIR.parent / "app" / "demo_data" / "news_en_silver_ner.conll.gz"
JAPANESE = BENCH_DIR / "data" / "ner_ja_hironsan.conll"
NUM = ("DATE", "TIME", "CARDINAL", "ORDINAL", "MONEY", "PERCENT", "QUANTITY")
# OntoNotes (spaCy) and IREX types -> PER, ORG, LOC, MISC, NUM
TYPE_MAP = {
    "english": {
        "PERSON": "PER",
        "ORG": "ORG",
        **dict.fromkeys(("GPE", "LOC", "FAC"), "LOC"),
        **dict.fromkeys(("NORP", "EVENT", "WORK_OF_ART", "PRODUCT", "LAW", "LANGUAGE"), "MISC"),
        **dict.fromkeys(NUM, "NUM"),
    },
    "japanese": {
        "PSN": "PER",
        "ORG": "ORG",
        "LOC": "LOC",
        "ART": "MISC",
        **dict.fromkeys(("DAT", "TIM", "MON", "PER"), "NUM"),
    },
}
TYPES = ("PER", "ORG", "LOC", "MISC", "NUM")
TAG_NAMES = ["O"] + [f"{p}-{t}" for t in TYPES for p in ("B", "I")]


@dataclass
class NerCorpus:
    """Words, true BIO tags (mapped types) and token vectors (float32) per sentence."""

    name: str
    words: list[list[str]]
    tags: list[list[str]]
    vectors: list[np.ndarray]


def _read(path: Path, type_map: dict[str, str]) -> tuple[list[list[str]], list[list[str]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        parsed = read_conll(fh, path.name, max_tokens=10_000)
    words, tags = [], []
    for sent in parsed.sentences:
        t = ["O"] * len(sent.tokens)
        for span in sent.spans:
            typ = type_map[span.label]
            t[span.start : span.end] = [f"B-{typ}"] + [f"I-{typ}"] * (span.end - span.start - 1)
        words.append(list(sent.tokens))
        tags.append(t)
    return words, tags


def cached_token_vectors(words: list[list[str]], encoder: str) -> list[np.ndarray]:
    """``embed_tokens`` memoised on disk, keyed by the encoder and every word."""
    h = hashlib.sha256(encoder.encode())
    for sent in words:
        h.update("\x1f".join(sent).encode() + b"\x1e")
    path = CACHE / f"tokens-{h.hexdigest()}.npz"
    if path.exists():
        with np.load(path) as z:
            flat, lengths = z["flat"], z["lengths"]
        return np.split(flat, np.cumsum(lengths)[:-1])
    vectors = embed_tokens(words, encoder)
    flat, lengths = np.concatenate(vectors), np.array([len(v) for v in vectors])
    atomic_write(path, lambda fh: np.savez(fh, flat=flat, lengths=lengths))
    return vectors


def load(name: str, limit: int | None = None) -> NerCorpus:
    """``english`` or ``japanese``, the first ``limit`` sentences."""
    words, tags = _read(ENGLISH if name == "english" else JAPANESE, TYPE_MAP[name])
    words, tags = words[:limit], tags[:limit]
    return NerCorpus(name, words, tags, cached_token_vectors(words, default_encoder_path()))
