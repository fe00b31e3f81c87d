"""Tokens and spans in, scored candidate segments out: the sequence-tagging counterpart of
``text_classification.pipeline.score_texts``, shared by the worker job and
``assay score --task sequence_tagging``.

Spans are the interface (as in ``app.kinds.sequence_tagging.formats``); BIO tag ids exist only
between here and the engine, over the tag set ``O`` plus ``B-``/``I-`` of every type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.core.config import Settings
from workers.engine.embeddings import atomic_write, cache_file
from workers.engine.segment_influence import SegmentScores, score_segments
from workers.engine.tagging import OUTSIDE, TaggedCorpus, bio_spans, tag_strings
from workers.engine.token_vectors import embed_tokens

SpanTuple = tuple[int, int, str]  # (start, end exclusive, type), token offsets
Progress = Callable[[float, str], None]
EMBED_SHARE = 0.5  # of the progress bar; fitting and influence take the rest
SUPPORTER, OPPOSER = "supporter", "opposer"


@dataclass
class TaggingOutput:
    scores: SegmentScores  # segments in ``score_segments``' order
    predicted_spans: list[list[SpanTuple]]  # per training sentence, the model's Viterbi spans
    dev_predicted_spans: list[list[SpanTuple]]
    # (target segment, evidence segment, role, rank 1.., influence); evidence from other sentences
    evidence: list[tuple[int, int, str, int, float]]
    metrics: dict[str, float | int | str]


def tag_names(types: Sequence[str]) -> list[str]:
    """``O``, then ``B-T`` and ``I-T`` for each type in the given order."""
    return [OUTSIDE, *(f"{p}-{t}" for t in types for p in ("B", "I"))]


def span_tag_ids(
    n_tokens: int, spans: Sequence[SpanTuple], index: dict[str, int], sentence: int
) -> np.ndarray:
    """BIO tag ids of one sentence; ValueError for a span out of range, overlapping or of a
    type outside the tag set."""
    ids = np.zeros(n_tokens, dtype=np.int64)
    for start, end, typ in spans:
        if not 0 <= start < end <= n_tokens:
            raise ValueError(f"sentence {sentence}: span {start}-{end} outside {n_tokens} tokens")
        if f"B-{typ}" not in index:
            raise ValueError(f"sentence {sentence}: span {start}-{end} has unknown type {typ!r}")
        if ids[start:end].any():
            raise ValueError(f"sentence {sentence}: span {start}-{end} overlaps another")
        ids[start] = index[f"B-{typ}"]
        ids[start + 1 : end] = index[f"I-{typ}"]
    return ids


def span_f1(true: Sequence[Sequence[SpanTuple]], pred: Sequence[Sequence[SpanTuple]]) -> float:
    """Exact-match span micro-F1 (boundaries and type), as seqeval and CoNLL score NER; 1.0
    when neither side has a span."""
    gold = {(i, *s) for i, spans in enumerate(true) for s in spans}
    found = {(i, *s) for i, spans in enumerate(pred) for s in spans}
    total = len(gold) + len(found)
    return 1.0 if total == 0 else 2 * len(gold & found) / total


def token_vectors(sentences: Sequence[Sequence[str]], settings: Settings) -> list[np.ndarray]:
    """``embed_tokens`` memoised on disk like the classification embeddings (keyed by the
    sentences, encoder and max length), so scoring the same file again skips the encoder."""
    encoder = settings.encoder_path()
    key = [json.dumps(list(s), ensure_ascii=False) for s in sentences]
    path = cache_file(
        key, encoder, settings.artifacts_dir / "token_vectors", settings.embed_max_length
    )
    lengths = [len(s) for s in sentences]
    if path.exists():
        flat = np.load(path)
    else:
        vectors = embed_tokens(
            sentences,
            encoder,
            device=settings.device,
            batch_size=settings.embed_batch_size,
            max_length=settings.embed_max_length,
        )
        flat = np.concatenate(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)
        atomic_write(path, lambda fh: np.save(fh, flat))
    return np.split(flat, np.cumsum(lengths)[:-1]) if lengths else []


def _evidence(scores: SegmentScores, k: int) -> list[tuple[int, int, str, int, float]]:
    """Every segment's top k supporters and opposers among the training segments of other
    sentences (``SegmentInfluence.top_influencers``), padding dropped."""
    top = scores.influence.top_influencers(scores.segments, scores.segments, k)
    out = []
    for role, idx, val in (
        (SUPPORTER, top.supporters_idx, top.supporters_val),
        (OPPOSER, top.opposers_idx, top.opposers_val),
    ):
        for t, r in zip(*np.nonzero(idx >= 0), strict=True):
            out.append((int(t), int(idx[t, r]), role, int(r) + 1, float(val[t, r])))
    return sorted(out, key=lambda e: (e[0], e[2], e[3]))  # target, role, rank


def score_tagged(
    train_tokens: Sequence[Sequence[str]],
    train_spans: Sequence[Sequence[SpanTuple]],
    types: Sequence[str],
    settings: Settings,
    *,
    dev_tokens: Sequence[Sequence[str]] = (),
    dev_spans: Sequence[Sequence[SpanTuple]] = (),
    progress: Progress | None = None,
) -> TaggingOutput:
    """Embed the tokens, fit the MEMM head, score every candidate segment (``score_segments``:
    dev influence when a dev set is given, else self-influence) and gather each one's evidence.

    ValueError when spans and tokens disagree or a span's type is not in ``types``.
    """

    def report(fraction: float, stage: str) -> None:
        if progress is not None:
            progress(fraction, stage)

    if len(train_tokens) != len(train_spans) or len(dev_tokens) != len(dev_spans):
        raise ValueError("one list of spans per sentence is needed")
    names = tag_names(types)
    index = {name: k for k, name in enumerate(names)}
    train_ids = [
        span_tag_ids(len(t), s, index, i)
        for i, (t, s) in enumerate(zip(train_tokens, train_spans, strict=True))
    ]
    dev_ids = [
        span_tag_ids(len(t), s, index, i)
        for i, (t, s) in enumerate(zip(dev_tokens, dev_spans, strict=True))
    ]
    report(0.0, "embedding")
    vectors = token_vectors([*train_tokens, *dev_tokens], settings)
    n_train = len(train_tokens)
    train = TaggedCorpus(vectors[:n_train], train_ids)
    dev = TaggedCorpus(vectors[n_train:], dev_ids) if dev_ids else None
    report(EMBED_SHARE, "scoring")
    scores = score_segments(
        train,
        names,
        l2=settings.tagging_l2,
        dev=dev,
        device=settings.device,
        # the words group segments by string: Assay's default ranking (systematic errors)
        words=[list(t) for t in train_tokens],
        dev_words=[list(t) for t in dev_tokens],
    )
    report(0.9, "evidence")
    evidence = _evidence(scores, settings.evidence_k)
    predicted = [bio_spans(tags) for tags in tag_strings(scores.predictions, names)]
    labelled = [sorted(map(tuple, s)) for s in train_spans]
    metrics: dict[str, float | int | str] = {
        "n_train": n_train,
        "n_segments": len(scores.segments),
        "train_span_f1": span_f1(labelled, predicted),
        "estimator": scores.estimator,
    }
    dev_predicted: list[list[SpanTuple]] = []
    if dev is not None:
        dev_predicted = [
            bio_spans(t) for t in tag_strings(scores.influence.head.predict(dev.vectors), names)
        ]
        metrics.update(
            n_dev=len(dev_ids),
            dev_span_f1=span_f1([sorted(map(tuple, s)) for s in dev_spans], dev_predicted),
        )
    report(1.0, "done")
    return TaggingOutput(scores, predicted, dev_predicted, evidence, metrics)
