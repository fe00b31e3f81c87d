"""``assay score``: files in, a scores CSV out, no server or database (imports torch)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from app.config import get_settings
from app.services.export import spreadsheet_safe
from app.services.ingest import IngestError, parse_dataset

COLUMNS = (
    "id",
    "label",
    "predicted_label",
    "self_influence",
    "dev_influence",
    "suspicion_rank",
    "estimator",
)


def score_files(
    train: Path,
    dev: Path | None,
    out: Path,
    *,
    estimator: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> int:
    """Rank TRAIN's labels by suspicion; the label set is TRAIN's labels (DEV may use no other)."""
    from workers.pipeline import score_texts

    train_rows = parse_dataset(train.read_bytes(), train.name, labels=None)
    labels = sorted({row.label for row in train_rows if row.label})
    if len(labels) < 2:
        raise IngestError(train.name, None, "label", "scoring needs at least two distinct labels")
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
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i, row in enumerate(train_rows):
            writer.writerow(
                [  # ids and labels come from the user's file: never a formula in a spreadsheet
                    spreadsheet_safe(row.external_id),
                    spreadsheet_safe(row.label),
                    spreadsheet_safe(labels[result.predicted[i]]),
                    f"{result.self_influence[i]:.6e}",
                    "" if result.dev_influence is None else f"{result.dev_influence[i]:.6e}",
                    int(result.rank[i]),
                    result.estimator,
                ]
            )
    return len(train_rows)
