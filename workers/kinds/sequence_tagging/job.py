"""The sequence-tagging training job: sentences in, segment influence per candidate span out,
stored as one model version whose rows are per sentence (the unit the queue serves).

A sentence's place in the queue is its most suspicious segment's (the ``focus`` the queue
highlights); its suggestion is its annotation with that segment changed as the model
suggests; its evidence is that segment's supporters and opposers, each a segment of another
sentence (stored as ``start:end:TYPE`` beside the sentence)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from app.core.config import Settings
from app.kinds.sequence_tagging.annotation import encode
from app.kinds.sequence_tagging.formats import Span
from app.services.job_lease import Lease
from app.services.jobs import progress_reporter
from app.services.results import ItemResults, PredictionRow
from app.services.span_groups import GROUPS_KEY
from app.services.tagging_data import TaggingData, load_tagging_data
from workers.engine.systematic import systematic_groups
from workers.engine.tagging import OUTSIDE, Segment
from workers.kinds.sequence_tagging.pipeline import TaggingOutput, score_tagged
from workers.kinds.versions import load_for_job, save_artifact, store_version


def train_and_score(lease: Lease, settings: Settings) -> None:
    """Load the project's sentences, score them, store the version with the job's success."""
    loaded = load_for_job(lease, load_tagging_data)
    if loaded is None:
        return
    project_id, data = loaded
    report = progress_reporter(lease.job_id, settings.job_progress_interval_s, lease)
    output = score_tagged(
        data.train_tokens,
        data.train_spans,
        data.types,
        settings,
        dev_tokens=data.dev_tokens,
        dev_spans=data.dev_spans,
        progress=report,
    )
    report(0.99, "storing")
    results = sentence_results(data, output)
    metrics = {
        **output.metrics,
        GROUPS_KEY: span_group_rows(data, output, settings.span_groups_max),
    }
    arrays = {
        "theta": output.scores.influence.theta,
        "item_ids": data.train_ids,
        "types": data.types,
    }
    store_version(
        lease,
        project_id,
        save_artifact(settings, project_id, lease, arrays),
        estimator=str(output.metrics["estimator"]),
        metrics=metrics,
        label_event_watermark=data.label_event_watermark,
        results=results,
    )


def _segment_string(segment: Segment, label: str | None = None) -> str:
    return f"{segment.start}:{segment.end}:{label or segment.label}"


def suggested_annotation(spans: Sequence[tuple[int, int, str]], seg: Segment, typ: str) -> str:
    """The sentence's spans with ``seg`` given type ``typ`` (``O``: removed); spans it would
    overlap give way, as a reviewer accepting the suggestion would have them."""
    kept = [Span(s, e, t) for s, e, t in spans if e <= seg.start or s >= seg.end]
    if typ != OUTSIDE:
        kept.append(Span(seg.start, seg.end, typ))
    return encode(kept)


def sentence_results(data: TaggingData, output: TaggingOutput) -> ItemResults:
    """Per sentence: its focus segment (the most suspicious), rank, prediction, suggestion and
    scores; the focus segment's evidence with each evidence segment's own span."""
    scores = output.scores
    by_sentence: dict[int, int] = {}  # sentence -> its most suspicious segment
    for k in np.argsort(scores.rank, kind="stable"):
        by_sentence.setdefault(scores.segments[int(k)].sentence, int(k))
    ordered = sorted(
        range(len(data.train_ids)), key=lambda i: _sentence_order(i, by_sentence, scores)
    )
    rank_of = {i: r + 1 for r, i in enumerate(ordered)}
    predictions, item_scores = [], []
    for i, item_id in enumerate(data.train_ids):
        k = by_sentence.get(i)
        predicted = encode(Span(*s) for s in output.predicted_spans[i])
        if k is None:
            predictions.append(PredictionRow(item_id, predicted, 1.0, None, rank_of[i]))
            continue
        seg = scores.segments[k]
        suggestion = suggested_annotation(data.train_spans[i], seg, scores.suggested[k])
        predictions.append(
            PredictionRow(
                item_id,
                predicted,
                math.exp(-float(scores.loss[k])),
                suggestion,
                rank_of[i],
                focus=f"{seg.start}:{seg.end}",
            )
        )
        values = {"suspicion": scores.suspicion[k], "self_influence": scores.self_influence[k]}
        values["loss"] = scores.loss[k]
        if scores.dev_influence is not None:
            values["dev_influence"] = scores.dev_influence[k]
        item_scores += [(item_id, name, float(v)) for name, v in values.items()]
    focus = {k: i for i, k in by_sentence.items()}
    evidence, labels = [], []
    for target, source, role, rank, value in output.evidence:
        if target not in focus:
            continue
        target_seg, source_seg = scores.segments[target], scores.segments[source]
        evidence.append(
            (data.train_ids[focus[target]], data.train_ids[source_seg.sentence], role, rank, value)
        )
        labels.append((_segment_string(source_seg), _segment_string(target_seg)))
    snapshot = dict(zip(data.train_ids, data.train_labels, strict=True))
    return ItemResults(predictions, item_scores, evidence, snapshot, evidence_labels=labels)


def span_group_rows(data: TaggingData, output: TaggingOutput, limit: int) -> list[dict]:
    """The most harmful groups of labelled spans sharing a surface string and type
    (``systematic_groups``), as stored rows. A group's suggestion is the type the gold dev set
    gives that string most often (the evidence a systematic error leaves: the model learned
    the wrong type, so its own prediction repeats it), else the engine's."""
    scores = output.scores
    harm = -scores.dev_influence if scores.dev_influence is not None else scores.suspicion
    labelled = [k for k, seg in enumerate(scores.segments) if seg.label != OUTSIDE]
    segments = [scores.segments[k] for k in labelled]
    groups = systematic_groups(
        segments, data.train_tokens, [scores.suggested[k] for k in labelled], harm[labelled]
    )
    dev_types: dict[str, Counter] = defaultdict(Counter)
    for tokens, spans in zip(data.dev_tokens, data.dev_spans, strict=True):
        for start, end, typ in spans:
            dev_types[" ".join(tokens[start:end])][typ] += 1
    rows = []
    for group in groups[:limit]:
        gold = [t for t, _ in dev_types[group.surface].most_common() if t != group.label]
        members = [segments[m] for m in group.members]
        rows.append(
            {
                "surface": group.surface,
                "label": group.label,
                "suggested": gold[0] if gold else group.suggested,
                "score": group.score,
                "members": [[data.train_ids[s.sentence], s.start, s.end] for s in members],
            }
        )
    return rows


def _sentence_order(i: int, by_sentence: dict[int, int], scores) -> tuple[int, int]:
    """Sentences by their best segment's rank; those without a candidate segment last."""
    k = by_sentence.get(i)
    return (0, int(scores.rank[k])) if k is not None else (1, i)
