"""A toy NER corpus whose entity types are readable from the token vectors alone.

Every word's vector is its true class's centroid plus its own hashed noise, so a head that has
never seen a name still types it from its vector, as a contextual encoder types an unseen name
from its context. One name, "Nike" (an ORG), is labelled LOC in every sentence: the consistent
mistake that ordinary out-of-fold scores miss and entity-disjoint folds expose.
"""

from __future__ import annotations

import hashlib

import numpy as np

from workers.engine.tagging import TaggedCorpus, tag_ids

TAG_NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
NAMES = {
    "PER": ["Alice Moreau", "Bob", "Carla", "Dmitri Volkov", "Erin", "Farid", "Gita", "Hugo"],
    "ORG": ["Nike", "Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Wonka"],
    "LOC": ["Paris", "New York", "Lagos", "Lima", "Oslo", "Quito", "Riga", "Seoul"],
}
FILLER = [
    "the",
    "said",
    "that",
    "on",
    "today",
    "a",
    "report",
    "by",
    "in",
    "met",
    "with",
    "from",
    "visit",
    "at",
]
WRONG = ("Nike", "LOC")  # Nike is an ORG, labelled LOC everywhere
DIM = 16


def _noise(word: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).normal(size=dim)


def toy_corpus(n_sentences: int = 90, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """Words and labelled BIO tags: filler words around one or two names per sentence."""
    rng = np.random.default_rng(seed)
    words, tags = [], []
    for _ in range(n_sentences):
        w: list[str] = []
        t: list[str] = []
        for _ in range(int(rng.integers(1, 3))):
            w += [str(f) for f in rng.choice(FILLER, size=int(rng.integers(1, 4)))]
            t += ["O"] * (len(w) - len(t))
            typ = str(rng.choice(list(NAMES)))
            name = str(rng.choice(NAMES[typ])) if rng.random() > 0.1 else WRONG[0]
            label = WRONG[1] if name == WRONG[0] else typ  # about 1 name in 9 is "Nike"
            parts = name.split()
            w += parts
            t += [f"B-{label}"] + [f"I-{label}"] * (len(parts) - 1)
        w.append(str(rng.choice(FILLER)))
        t.append("O")
        words.append(w)
        tags.append(t)
    return words, tags


def toy_vectors(words: list[list[str]]) -> list[np.ndarray]:
    """Centroid of the word's true class (filler: O) times 3, plus its own unit noise."""
    rng = np.random.default_rng(12345)
    centroid = {c: rng.normal(size=DIM) * 3 / np.sqrt(DIM) for c in ("O", *NAMES)}
    true = {p: typ for typ, names in NAMES.items() for n in names for p in n.split()}
    return [
        np.stack([centroid[true.get(w, "O")] + _noise(w, DIM) / np.sqrt(DIM) for w in s])
        for s in words
    ]


def toy_tagged(n_sentences: int = 90, seed: int = 0):
    """(words, tags, TaggedCorpus) of ``toy_corpus``."""
    words, tags = toy_corpus(n_sentences, seed)
    return words, tags, TaggedCorpus(toy_vectors(words), tag_ids(tags, TAG_NAMES))
