"""``assay demo --task ranking``: the MSLR sample (``app/demo_data``: Microsoft's web-search
relevance judgments, grades 0-4, 136 features) as a silver training set with a few wrong grades,
and gold dev queries from its test part.

The first ``ASSAY_RANKING_DEMO_QUERIES`` queries of each part are used. ``ASSAY_RANKING_DEMO_
FLIPPED`` training judgments (seeded by ``ASSAY_DEMO_SEED``) get a wrong grade the way
judgments go wrong: a relevant document (grade >= 2) judged 0, an irrelevant one judged 4.
Lines have no document-id comment, so a judgment's id is its line in the uploaded file;
``flipped_ids`` says which, so the report can count how many the queue puts first.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

from app.cli.demo_errors import first_tenth
from app.core.config import get_settings
from app.core.db import session_scope
from app.kinds import TaskKind
from app.models import DatasetKind
from app.services.datasets import import_dataset
from app.services.projects import create_project

DATA_DIR = Path(__file__).parents[1] / "demo_data"
PROJECT_NAME = "Web search relevance (demo)"
GRADES = ["0", "1", "2", "3", "4"]


def first_queries(split: str, n: int) -> list[str]:
    """The lines of the sample part's first ``n`` queries (rows are grouped by query)."""
    path = DATA_DIR / f"mslr_sample_{split}.svmlight.gz"
    kept: list[str] = []
    seen: set[str] = set()
    for line in gzip.decompress(path.read_bytes()).decode().splitlines():
        seen.add(line.split()[1])
        if len(seen) > n:
            break
        kept.append(line + "\n")
    return kept


def flipped(line: str) -> str:
    grade, rest = line.split(" ", 1)
    return f"{0 if int(grade) >= 2 else 4} {rest}"


def demo_parts() -> tuple[dict[DatasetKind, list[str]], set[str]]:
    """(silver and gold dev lines, the ids (1-based line numbers) of the flipped judgments)."""
    settings = get_settings()
    train = first_queries("train", settings.ranking_demo_queries)
    dev = first_queries("test", settings.ranking_demo_queries)
    picked = random.Random(settings.demo_seed).sample(
        range(len(train)), min(settings.ranking_demo_flipped, len(train))
    )
    for i in picked:
        train[i] = flipped(train[i])
    return {DatasetKind.silver: train, DatasetKind.gold_dev: dev}, {str(i + 1) for i in picked}


def create_ranking_demo_project() -> int:
    """The project (grades 0-4), both parts imported."""
    parts, _ = demo_parts()
    with session_scope() as session:
        project = create_project(session, PROJECT_NAME, GRADES, task_kind=TaskKind.ranking)
        for kind, lines in parts.items():
            data = "".join(lines).encode()
            import_dataset(session, project, data, f"mslr_{kind}.svmlight", kind)
        return project.id


def ranking_report(project_id: int) -> str:
    """How many flipped judgments the queue's first tenth holds, against their share."""
    parts, wrong = demo_parts()
    return (
        f"{len(parts[DatasetKind.silver])} silver judgments, {len(wrong)} of them with a wrong "
        f"grade; {first_tenth(project_id, wrong)}"
    )
