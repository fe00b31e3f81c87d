"""``assay demo --task survival``: the German Breast Cancer Study Group records (gbsg2: 686
women, recurrence-free survival, ``time`` in days and ``cens`` 1 = recurrence or death) as a
silver training set with a few corrupted follow-ups, and a gold dev set.

The records are shuffled (``ASSAY_DEMO_SEED``); the last ``ASSAY_SURVIVAL_DEMO_DEV`` are the
gold dev set, as recorded. Of the others, ``ASSAY_SURVIVAL_DEMO_CORRUPTED`` records picked at
random are corrupted the way follow-up records go wrong: a censored one gets the event
indicator swapped (a censoring entered as a recurrence), an event one its duration shifted 3
times later (the recurrence dated at a later visit). ``demo_parts`` says which, so the
report can count how many the queue puts first.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from app.cli.demo_errors import first_tenth
from app.core.config import get_settings
from app.core.db import session_scope
from app.kinds import TaskKind
from app.models import DatasetKind
from app.services.datasets import import_dataset
from app.services.projects import create_project

DATA_FILE = Path(__file__).parents[1] / "demo_data" / "gbsg2.csv"
PROJECT_NAME = "Breast cancer follow-up (demo)"
LABELS = ["time", "cens"]
SHIFT = 3.0


def _records(seed: int) -> list[dict[str, str]]:
    """gbsg2's rows with an ``id`` column (their 1-based row number), shuffled."""
    with DATA_FILE.open(encoding="utf-8", newline="") as handle:
        rows = [{"id": str(i), **row} for i, row in enumerate(csv.DictReader(handle), 1)]
    random.Random(seed).shuffle(rows)
    return rows


def corrupt(row: dict[str, str]) -> dict[str, str]:
    """A censored record as an event, an event ``SHIFT`` times later (module docstring)."""
    if row["cens"] == "0":
        return {**row, "cens": "1"}
    return {**row, "time": str(round(float(row["time"]) * SHIFT, 1))}


def demo_parts(seed: int | None = None) -> tuple[dict[DatasetKind, list[dict[str, str]]], set[str]]:
    """(silver and gold dev records, the ids of the corrupted silver ones); ``seed`` (default
    ``ASSAY_DEMO_SEED``) picks the split and the corrupted records (the benchmark varies it)."""
    settings = get_settings()
    seed = settings.demo_seed if seed is None else seed
    rows = _records(seed)
    split = len(rows) - settings.survival_demo_dev
    train, dev = rows[:split], rows[split:]
    picked = random.Random(seed + 1).sample(
        range(len(train)), min(settings.survival_demo_corrupted, len(train))
    )
    for i in picked:
        train[i] = corrupt(train[i])
    return {DatasetKind.silver: train, DatasetKind.gold_dev: dev}, {train[i]["id"] for i in picked}


def _csv_bytes(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def create_survival_demo_project() -> int:
    """The project (labels: gbsg2's duration and event columns), both datasets imported."""
    parts, _ = demo_parts()
    with session_scope() as session:
        project = create_project(session, PROJECT_NAME, LABELS, task_kind=TaskKind.survival)
        for kind, rows in parts.items():
            import_dataset(session, project, _csv_bytes(rows), f"gbsg2_{kind}.csv", kind)
        return project.id


def survival_report(project_id: int) -> str:
    """How many corrupted records the queue's first tenth holds, against their share."""
    parts, wrong = demo_parts()
    return (
        f"{len(parts[DatasetKind.silver])} silver records, {len(wrong)} of them "
        f"corrupted (a censoring made an event, or an event dated {SHIFT:g} times later); "
        + first_tenth(project_id, wrong)
    )
