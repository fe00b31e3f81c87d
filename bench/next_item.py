"""The queue's next-item request: median and 95th percentile latency, SQLite and PostgreSQL,
10k and 1M queued items.

Synthetic items and one model version's predictions (a random suspicion ranking) are bulk
loaded (PostgreSQL ``COPY``, SQLite ``executemany``), then annotators take turns asking for
their next item. Timed: ``app.services.queue.next_item`` with its commit, in a fresh session
as the web process does per request, and the queue page's route through the ASGI app (its
rendering, evidence and login check included). Between requests the item is marked reviewed
untimed, so the queue advances as it does while people work. The plans of the statements the
request runs are checked for index use.

    python -m bench.next_item [--sizes 10000 1000000] [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, update

from bench.common import Timer, machine, write_table
from tests.support import assay_env, postgres_database

ANNOTATORS = 8
WARMUP = 10
PASSWORD = "bench-password"
SQLITE_NOW = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # how SQLAlchemy stores it
ITEM_TEXT = "a synthetic snippet of review text, long enough to look like one: #{}"


@contextmanager
def backend(kind: str, workdir: Path) -> Iterator[str]:
    """An empty, migrated database of ``kind`` with the app's settings pointing at it."""
    from app.core.db import migrate

    if kind == "sqlite":
        with assay_env(workdir):
            migrate()
            yield kind
    else:
        with postgres_database() as url, assay_env(workdir, database_url=url):
            migrate()
            yield kind


def _rows(n: int, project_id: int, dataset_id: int, now: object) -> Iterator[tuple]:
    for i in range(n):
        label = "fresh" if i % 3 else "rotten"
        yield (
            i + 1,
            project_id,
            dataset_id,
            "silver",
            f"x{i}",
            ITEM_TEXT.format(i),
            "{}",
            label,
            label,
            "pending",
            now,
        )


ITEM_COLUMNS = (
    "id, project_id, dataset_id, dataset_kind, external_id, text, payload, silver_label,"
    " current_label, status, updated_at"
)
PRED_COLUMNS = "model_version_id, item_id, label, confidence, suggested_label, suspicion_rank"


def load(n: int) -> int:
    """Users, one project with ``n`` queued items and a model version ranking them all."""
    from app.core.auth import create_user
    from app.core.db import get_engine, refresh_planner_stats, session_scope
    from app.models import Dataset, Job, JobState, ModelVersion, Role
    from app.services.membership import add_member
    from app.services.projects import create_project
    from app.services.results import rank_queue

    with session_scope() as session:
        project = create_project(session, "bench", ["fresh", "rotten"])
        for a in range(ANNOTATORS):
            user = create_user(session, f"annotator{a}", PASSWORD, Role.annotator)
            add_member(session, project, user, added_by=None)
        dataset = Dataset(project_id=project.id, kind="silver", source_filename="s.csv")
        job = Job(project_id=project.id, kind="train_score", state=JobState.succeeded)
        session.add_all([dataset, job])
        session.flush()
        version = ModelVersion(
            project_id=project.id,
            job_id=job.id,
            version=1,
            artifact_path="none",
            estimator="exact_head",
            metrics={},
        )
        session.add(version)
        session.flush()
        ids = (project.id, dataset.id, version.id)
    project_id, dataset_id, version_id = ids
    ranks = list(range(1, n + 1))
    random.Random(0).shuffle(ranks)
    predictions = ((version_id, i + 1, "fresh", 0.8, None, ranks[i]) for i in range(n))
    raw = get_engine().raw_connection()
    try:
        cursor = raw.cursor()
        if get_engine().dialect.name == "postgresql":
            for table, columns, rows in (
                ("items", ITEM_COLUMNS, _rows(n, project_id, dataset_id, datetime.now(UTC))),
                ("predictions", PRED_COLUMNS, predictions),
            ):
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            cursor.execute("SELECT setval('items_id_seq', %s)", (n,))
        else:
            for table, columns, rows in (
                ("items", ITEM_COLUMNS, _rows(n, project_id, dataset_id, SQLITE_NOW)),
                ("predictions", PRED_COLUMNS, predictions),
            ):
                marks = ", ".join("?" * len(columns.split(",")))
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
        raw.commit()
    finally:
        raw.close()
    with session_scope() as session:  # as the worker does after storing a version
        rank_queue(session, project_id, version_id)
        refresh_planner_stats(session)
    return project_id


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1000 for s in samples)
    return statistics.median(ms), ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]


def _review(item_id: int) -> None:
    """Untimed stand-in for the decision: the item leaves the queue and its lease ends."""
    from app.core.db import session_scope
    from app.models import Item

    with session_scope() as session:
        session.execute(
            update(Item)
            .where(Item.id == item_id)
            .values(status="reviewed", leased_by_id=None, lease_expires_at=None)
        )


def time_service(project_id: int, requests: int) -> list[float]:
    from app.core.db import new_session
    from app.models import Project, User
    from app.services.queue import next_item

    samples = []
    for r in range(WARMUP + requests):
        with new_session() as session:
            user = session.get(User, 1 + r % ANNOTATORS)
            project = session.get(Project, project_id)
            start = time.perf_counter()
            item = next_item(session, project, user, 600)
            session.commit()
            elapsed = time.perf_counter() - start
            item_id = item.id
        if r >= WARMUP:
            samples.append(elapsed)
        _review(item_id)
    return samples


def time_route(project_id: int, requests: int) -> list[float]:
    """GET /projects/{id}/queue in-process (no sockets): the request an annotator's page makes."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.seeding import page_login

    clients = []
    for a in range(ANNOTATORS):
        client = TestClient(create_app(run_migrations=False))
        page_login(client, f"annotator{a}", PASSWORD)
        clients.append(client)
    samples = []
    for r in range(WARMUP + requests):
        client = clients[r % ANNOTATORS]
        start = time.perf_counter()
        response = client.get(f"/projects/{project_id}/queue")
        elapsed = time.perf_counter() - start
        assert response.status_code == 200, response.text[:500]
        if r >= WARMUP:
            samples.append(elapsed)
        _review(int(re.search(r'data-item-id="(\d+)"', response.text)[1]))
    for client in clients:
        client.close()
    return samples


def query_plans(project_id: int) -> str:
    """The indexes the planner picks for the statements one next-item call runs."""
    from app.core.db import get_engine, new_session
    from app.models import Project, User
    from app.services.queue import next_item

    engine, statements = get_engine(), []

    def capture(conn, cursor, statement, parameters, context, executemany):
        # UPDATEs too: on PostgreSQL the pick and the lease are one UPDATE; EXPLAIN without
        # ANALYZE only plans it
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE")) and "items" in statement:
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with new_session() as session:
            next_item(session, session.get(Project, project_id), session.get(User, 1), 600)
            session.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    used: set[str] = set()
    scans: set[str] = set()
    postgres = engine.dialect.name == "postgresql"
    explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
    with engine.connect() as conn:
        for statement, parameters in statements:
            rows = conn.exec_driver_sql(explain + statement, parameters)
            plan = "\n".join(str(r[0] if postgres else r[3]) for r in rows)
            if postgres:
                used |= set(re.findall(r"Index (?:Only )?Scan(?: Backward)? using (\w+)", plan))
                scans |= set(re.findall(r"Seq Scan on (\w+)", plan))
            else:
                used |= set(re.findall(r"USING (?:COVERING )?INDEX (\w+)", plan))
                used |= {"primary key"} if "PRIMARY KEY" in plan else set()
                scans |= set(re.findall(r"^SCAN (\w+)$", plan, flags=re.M))
    return (
        f"indexes: {', '.join(sorted(used)) or 'none'}; "
        f"full scans: {', '.join(sorted(scans)) or 'none'}"
    )


def run(kind: str, n: int, requests: int) -> list:
    with tempfile.TemporaryDirectory() as tmp, backend(kind, Path(tmp)):
        with Timer() as loading:
            project_id = load(n)
        print(f"{kind} {n:,}: loaded in {loading.seconds:.1f}s", flush=True)
        plans = query_plans(project_id)
        service = _percentiles(time_service(project_id, requests))
        route = _percentiles(time_route(project_id, requests))
        row = [kind, f"{n:,}", *service, *route, f"{loading.seconds:.0f}", plans]
        print(row, flush=True)
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    os.environ.setdefault("ASSAY_LEASE_TTL_S", "600")
    rows = [run(kind, n, args.requests) for n in args.sizes for kind in args.backends]
    write_table(
        "next_item",
        "Next-item request latency (ms), one project, 8 annotators taking turns",
        [
            "database",
            "queued items",
            "service p50",
            "service p95",
            "page route p50",
            "page route p95",
            "bulk load s",
            "query plan",
        ],
        rows,
        note=f"{args.requests} timed requests per row after {WARMUP} warm-up; service: "
        "`app.services.queue.next_item` and its commit in a fresh session; page route: GET "
        "`/projects/{id}/queue` in-process through the ASGI app (login, evidence, template). "
        f"PostgreSQL 127.0.0.1 (local socket), SQLite WAL file; {machine()}, while other "
        "jobs ran. Reproduce: `python -m bench.next_item`.",
    )


if __name__ == "__main__":
    main()
