"""What a reviewer's reads cost on a large project: the queue's progress line (rendered with
every queue item) and the data browser's count and first page, unfiltered and with each kind of
filter, SQLite and PostgreSQL.

The project is ``bench.export``'s synthetic one (items, a model version ranking them all, four
scores each, a correction by annotator0 on 1 in 100 items). Each query runs ``REPEATS`` times in
a fresh session; the table gives the median, in milliseconds.

    python -m bench.browsing [--rows 100000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.common import machine, write_table
from bench.export import DECIDED_EVERY, add_scores_and_decisions
from bench.next_item import backend, load

REPEATS = 5
PAGE = 50


def _median_ms(work: Callable[..., object]) -> float:
    from app.core.db import session_scope

    times = []
    for _ in range(REPEATS):
        with session_scope() as session:
            start = time.perf_counter()
            work(session)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def cases(project_id: int) -> dict[str, Callable]:
    """Label -> the read, as the pages make it."""
    from sqlalchemy import select

    from app.models import Project, User
    from app.services.item_filters import ItemFilter
    from app.services.items import count_items, list_items
    from app.services.progress import queue_progress

    def progress(session):
        project = session.get(Project, project_id)
        user = session.scalar(select(User).where(User.username == "annotator0"))
        return queue_progress(session, project, user, datetime.now(UTC))

    def browse(filters: ItemFilter) -> Callable:
        def read(session):
            project = session.get(Project, project_id)
            count_items(session, project, filters)
            return list_items(
                session, project, order="suspicion", limit=PAGE, cursor=None, filters=filters
            )

        return read

    return {
        "queue progress line": progress,
        "browser: no filter": browse(ItemFilter()),
        "browser: text search": browse(ItemFilter(text="#4242")),
        "browser: label changed": browse(ItemFilter(changed=True)),
        "browser: suspicion rank 1-1000": browse(ItemFilter(rank_min=1, rank_max=1000)),
        "browser: decided by annotator0": browse(ItemFilter(annotator="annotator0")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    measured: dict[str, dict[str, float]] = {}
    for kind in args.backends:
        with tempfile.TemporaryDirectory() as tmp, backend(kind, Path(tmp)):
            project_id = load(args.rows)
            add_scores_and_decisions(project_id)
            for name, work in cases(project_id).items():
                measured.setdefault(name, {})[kind] = _median_ms(work)
                print(kind, name, f"{measured[name][kind]:.1f} ms")
    write_table(
        "browsing",
        f"Reads of a {args.rows:,}-item project: median ms",
        ["read", *args.backends],
        [[name, *(f"{by[k]:.0f}" for k in args.backends)] for name, by in measured.items()],
        f"Each browser row is the count of matching items plus the first page of {PAGE}, most "
        f"suspicious first; a correction on 1 in {DECIDED_EVERY} items. The progress line and "
        "the count read every item of the project (a GROUP BY and a COUNT): they grow linearly "
        f"with its size. {machine()}. Reproduce: `python -m bench.browsing --rows {args.rows}`.",
    )


if __name__ == "__main__":
    main()
