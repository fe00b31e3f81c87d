"""``assay score``: files in, a scores CSV out, no server or database (imports torch)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from app.core.config import Settings, get_settings
from app.kinds.errors import FormatError
from app.kinds.sequence_tagging.formats import (
    Parsed,
    Sentence,
    read_conll,
    read_jsonl,
)
from app.kinds.text_classification.formats import parse_dataset
from app.services.export import spreadsheet_safe

COLUMNS = (
    "id",
    "label",
    "predicted_label",
    "self_influence",
    "dev_influence",
    "suspicion_rank",
    "estimator",
)
TAGGING_COLUMNS = (
    "sentence",
    "start",
    "end",
    "tokens",
    "label",
    "predicted",
    "suggested",
    "suspicion_rank",
    "estimator",
)
CONLL_SUFFIXES = (".conll", ".txt", ".iob")


def score_files(
    train: Path,
    dev: Path | None,
    out: Path,
    *,
    estimator: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[int, str | None]:
    """Rank TRAIN's labels by suspicion; the label set is TRAIN's labels (DEV may use no other).
    Returns the rows written and, for the ``noise_check`` policy, which ranking it served and
    why."""
    from workers.kinds.text_classification.pipeline import score_texts

    train_rows = parse_dataset(train.read_bytes(), train.name, labels=None)
    labels = sorted({row.label for row in train_rows if row.label})
    if len(labels) < 2:
        raise FormatError(train.name, None, "label", "scoring needs at least two distinct labels")
    index = {label: i for i, label in enumerate(labels)}
    dev_rows = parse_dataset(dev.read_bytes(), dev.name, labels=labels) if dev else []
    output = score_texts(
        [r.text for r in train_rows],
        [index[r.label] for r in train_rows],
        len(labels),
        get_settings(),
        estimator=estimator,
        dev_texts=[r.text for r in dev_rows],
        dev_y=[index[r.label] for r in dev_rows],
        progress=progress,
    )
    result = output.result
    write_rows(
        out,
        COLUMNS,
        (
            [  # ids and labels come from the user's file: never a formula in a spreadsheet
                spreadsheet_safe(row.external_id),
                spreadsheet_safe(row.label),
                spreadsheet_safe(labels[result.predicted[i]]),
                f"{result.self_influence[i]:.6e}",
                "" if result.dev_influence is None else f"{result.dev_influence[i]:.6e}",
                int(result.rank[i]),
                result.estimator,
            ]
            for i, row in enumerate(train_rows)
        ),
    )
    choice = output.choice
    served = None
    if choice is not None:
        served = f"{result.estimator} served {choice.served}: {choice.reason}"
        if choice.finetune_hint:
            served += f". {choice.finetune_hint}"
    return len(train_rows), served


def write_rows(out: Path, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A CSV written under a temporary name and then moved into place, so that a failure part
    way leaves no half-written scores file (nor spoils the one from an earlier run)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        with partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(rows)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)


def read_tagged(path: Path, settings: Settings) -> Parsed:
    """A CoNLL (.conll, .txt, .iob) or JSONL (.jsonl) file of tagged sentences, by extension."""
    suffix = path.suffix.lower()
    if suffix not in (*CONLL_SUFFIXES, ".jsonl"):
        expected = ", ".join((*CONLL_SUFFIXES, ".jsonl"))
        raise FormatError(path.name, None, None, f"unknown extension '{suffix}': one of {expected}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise FormatError(path.name, line, None, "not UTF-8 text") from None
    lines = text.splitlines()
    max_tokens = settings.max_sentence_tokens
    if suffix == ".jsonl":
        return read_jsonl(
            lines, path.name, max_tokens=max_tokens, max_depth=settings.max_json_depth
        )
    return read_conll(lines, path.name, max_tokens=max_tokens)


def check_types(parsed: Parsed, filename: str, types: set[str], conll: bool) -> None:
    """A FormatError at the first span whose type is not in ``types`` (DEV against TRAIN's):
    the model has no tag for it. A CoNLL span's line is its first token's."""
    for sentence in parsed.sentences:
        for span in sentence.spans:
            if span.label not in types:
                line, field = (
                    (sentence.line + span.start, "tag") if conll else (sentence.line, "spans")
                )
                known = ", ".join(sorted(types))
                raise FormatError(
                    filename,
                    line,
                    field,
                    f"type '{span.label}' (tokens {span.start}-{span.end}) is not in the training "
                    f"file's types: {known}",
                )


def _tokens_and_spans(sentences: Sequence[Sentence]) -> tuple[list, list]:
    """Tokens and (start, end, type) span tuples per sentence, as the pipeline takes them."""
    return [s.tokens for s in sentences], [
        [(p.start, p.end, p.label) for p in s.spans] for s in sentences
    ]


def score_tagging_files(
    train: Path,
    dev: Path | None,
    out: Path,
    *,
    progress: Callable[[float, str], None] | None = None,
) -> int:
    """Rank TRAIN's candidate segments (labelled spans and predicted-only ones) by suspicion;
    the types are TRAIN's (DEV may use no other). Returns the number of rows written."""
    settings = get_settings()
    parsed = read_tagged(train, settings)
    types = sorted({span.label for s in parsed.sentences for span in s.spans})
    if not types:
        raise FormatError(train.name, None, "tag", "no entities: scoring needs labelled spans")
    dev_parsed = read_tagged(dev, settings) if dev else None
    if dev_parsed is not None:
        check_types(dev_parsed, dev.name, set(types), dev.suffix.lower() in CONLL_SUFFIXES)
    from workers.kinds.sequence_tagging.pipeline import (
        score_tagged,
    )  # torch: only once the files are good

    dev_tokens, dev_spans = _tokens_and_spans(dev_parsed.sentences if dev_parsed else ())
    output = score_tagged(
        *_tokens_and_spans(parsed.sentences),
        types,
        settings,
        dev_tokens=dev_tokens,
        dev_spans=dev_spans,
        progress=progress,
    )
    scores = output.scores
    segments = scores.segments

    def row(i: int) -> list[object]:
        seg = segments[i]
        words = " ".join(parsed.sentences[seg.sentence].tokens[seg.start : seg.end])
        cells = (words, seg.label, scores.predicted[i], scores.suggested[i])
        # tokens and types come from the user's file: never a formula in a spreadsheet
        safe = map(spreadsheet_safe, cells)
        return [seg.sentence, seg.start, seg.end, *safe, int(scores.rank[i]), scores.estimator]

    order = sorted(range(len(segments)), key=lambda i: scores.rank[i])
    write_rows(out, TAGGING_COLUMNS, map(row, order))
    return len(scores.segments)
