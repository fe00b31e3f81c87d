"""Load test of the shared queue: many annotators against a real `assay serve` on PostgreSQL.

A fresh PostgreSQL database gets ``bench.next_item``'s synthetic project (queued items ranked by
one model version, overlap 1) and an API token per annotator. `assay serve` runs in a child
process; each simulated annotator (an asyncio task with its own HTTP connection) loops: ask the
queue API for the next item, think for a random time, submit a label with a fresh idempotency
key; a fraction of submissions is sent twice with the same key (half at once, a double click;
half one after the other, a retry after a lost answer).
Measured: next-item and submit latency (median, 95th percentile), errors, throughput.

Afterwards the data is checked: no item decided by two annotators (overlap 1) and no item served
to two annotators (the clients' log); every submission answered 2xx is stored (none lost); no
idempotency key stored twice and no second event for an item and annotator (none duplicated).

    python -m bench.load [--annotators 100] [--duration 120] [--think 0.5 3] [--items 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text

from bench.common import RESULTS, write_table
from tests.support import assay_env, postgres_database

LABELS = ("fresh", "rotten")


@dataclass
class Samples:
    """What the clients saw; the integrity checks compare it with the database."""

    next_s: list[float] = field(default_factory=list)
    submit_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    served: list[tuple[int, int]] = field(default_factory=list)  # (item id, annotator)
    acknowledged: dict[str, tuple[int, int]] = field(default_factory=dict)  # key: item, user
    retries: int = 0
    retries_ok: int = 0
    resent: int = 0  # submits sent again after the connection dropped (same key: safe)
    empty_queue: int = 0
    seconds: float = 0.0
    client_cpu_s: float = 0.0  # the load generator's own CPU time, taken from the same machine


@dataclass
class Options:
    annotators: int = 100
    duration_s: float = 120.0
    think_s: tuple[float, float] = (0.5, 3.0)
    items: int = 20_000
    retry_fraction: float = 0.1
    web_workers: int = 2  # `assay serve` processes, as a deployment on this machine would run
    seed: int = 0
    server: dict[str, str] = field(default_factory=dict)  # more ASSAY_ settings for the server


def setup(items: int, annotators: int) -> tuple[int, dict[int, str]]:
    """The queued project (``bench.next_item.load``) and a token per annotator, by user id."""
    from sqlalchemy import select

    from app.core.auth import create_user, issue_token
    from app.core.db import session_scope
    from app.models import Project, Role, User
    from app.services.membership import add_member
    from bench.next_item import ANNOTATORS, PASSWORD, load

    project_id = load(items)
    tokens: dict[int, str] = {}
    with session_scope() as session:
        project = session.get(Project, project_id)
        for a in range(ANNOTATORS, annotators):
            user = create_user(session, f"annotator{a}", PASSWORD, Role.annotator)
            add_member(session, project, user, added_by=None)
        session.flush()
        users = session.scalars(select(User).where(User.role == Role.annotator).order_by(User.id))
        for user in list(users)[:annotators]:
            tokens[user.id] = issue_token(session, user, "load test")
    return project_id, tokens


async def annotator(
    client: httpx.AsyncClient,
    user_id: int,
    project_id: int,
    options: Options,
    samples: Samples,
    deadline: float,
    rng: random.Random,
) -> None:
    """One person at work: next item, think, label; sometimes the label is sent twice."""
    await asyncio.sleep(rng.uniform(0, options.think_s[1]))  # people do not start in step
    while time.monotonic() < deadline:
        start = time.perf_counter()
        try:
            response = await client.post(f"/api/v1/projects/{project_id}/queue/next")
        except httpx.HTTPError as err:
            samples.errors[f"next: {type(err).__name__}"] += 1
            continue
        samples.next_s.append(time.perf_counter() - start)
        if response.status_code == 204:
            samples.empty_queue += 1
            return
        if response.status_code != 200:
            samples.errors[f"next: {response.status_code}"] += 1
            continue
        item_id = response.json()["id"]
        samples.served.append((item_id, user_id))
        await asyncio.sleep(rng.uniform(*options.think_s))
        body = {"label": rng.choice(LABELS), "idempotency_key": uuid.uuid4().hex}
        if rng.random() >= options.retry_fraction:
            await submit(client, item_id, user_id, body, samples)
            continue
        samples.retries += 1
        if rng.random() < 0.5:  # a double click: both at once
            answers = await asyncio.gather(
                *(submit(client, item_id, user_id, body, samples) for _ in range(2))
            )
        else:  # the answer was lost on the way: sent again after it
            answers = [await submit(client, item_id, user_id, body, samples) for _ in range(2)]
        samples.retries_ok += all(answers)


async def submit(
    client: httpx.AsyncClient, item_id: int, user_id: int, body: dict, samples: Samples
) -> bool:
    start = time.perf_counter()
    try:
        try:
            response = await client.post(f"/api/v1/items/{item_id}/label", json=body)
        except httpx.TransportError:
            # A pooled keep-alive connection can close under the request (a busy machine); a
            # client with an idempotency key sends the same request again, as this one does.
            # The integrity checks still find any label lost or stored twice.
            samples.resent += 1
            response = await client.post(f"/api/v1/items/{item_id}/label", json=body)
    except httpx.HTTPError as err:
        samples.errors[f"submit: {type(err).__name__}"] += 1
        return False
    samples.submit_s.append(time.perf_counter() - start)
    if response.status_code // 100 != 2:
        samples.errors[f"submit: {response.status_code}"] += 1
        return False
    samples.acknowledged[body["idempotency_key"]] = (item_id, user_id)
    return True


async def simulate(base: str, project_id: int, tokens: dict[int, str], options: Options) -> Samples:
    samples = Samples()
    rng = random.Random(options.seed)
    deadline = time.monotonic() + options.duration_s
    clients = [
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        for token in tokens.values()
    ]
    start, cpu = time.perf_counter(), time.process_time()
    try:
        await asyncio.gather(
            *(
                annotator(
                    client,
                    user_id,
                    project_id,
                    options,
                    samples,
                    deadline,
                    random.Random(rng.random()),
                )
                for client, user_id in zip(clients, tokens, strict=True)
            )
        )
    finally:
        samples.seconds = time.perf_counter() - start
        samples.client_cpu_s = time.process_time() - cpu
        await asyncio.gather(*(client.aclose() for client in clients))
    return samples


def integrity(project_id: int, samples: Samples) -> dict[str, int]:
    """Zero everywhere, or the queue or the idempotency keys are broken."""
    from app.core.db import session_scope

    with session_scope() as session:

        def count(sql: str) -> int:
            return int(session.scalar(text(sql), {"p": project_id}) or 0)

        decided_twice = count(
            "SELECT count(*) FROM (SELECT e.item_id FROM label_events e JOIN items i"
            " ON i.id = e.item_id WHERE i.project_id = :p AND e.source = 'annotator'"
            " GROUP BY e.item_id HAVING count(DISTINCT e.user_id) > 1) t"
        )
        standings_twice = count(
            "SELECT count(*) FROM (SELECT a.item_id FROM assignments a JOIN items i"
            " ON i.id = a.item_id WHERE i.project_id = :p AND a.state = 'done'"
            " GROUP BY a.item_id HAVING count(*) > 1) t"
        )
        key_twice = count(
            "SELECT count(*) FROM (SELECT idempotency_key FROM label_events"
            " WHERE idempotency_key IS NOT NULL GROUP BY 1 HAVING count(*) > 1) t"
        )
        event_twice = count(
            "SELECT count(*) FROM (SELECT item_id, user_id FROM label_events"
            " WHERE source = 'annotator' GROUP BY 1, 2 HAVING count(*) > 1) t"
        )
        stored = {
            key: (item, user)
            for key, item, user in session.execute(
                text(
                    "SELECT e.idempotency_key, e.item_id, e.user_id FROM label_events e"
                    " JOIN items i ON i.id = e.item_id"
                    " WHERE i.project_id = :p AND e.source = 'annotator'"
                ),
                {"p": project_id},
            )
        }
    served_to: dict[int, set[int]] = defaultdict(set)
    for item_id, user_id in samples.served:
        served_to[item_id].add(user_id)
    lost = sum(stored.get(key) != where for key, where in samples.acknowledged.items())
    return {
        "double_assigned": decided_twice
        + standings_twice
        + sum(len(users) > 1 for users in served_to.values()),
        "lost": lost,
        "duplicated": key_twice + event_twice,
        "stored": len(stored),
    }


def percentiles(samples: list[float]) -> tuple[float, float]:
    """Median and 95th percentile in milliseconds (nearest rank)."""
    if not samples:
        return float("nan"), float("nan")
    ms = sorted(s * 1000 for s in samples)
    return statistics.median(ms), ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]


def run(options: Options) -> dict:
    """Set up a fresh PostgreSQL database, serve it, simulate, check; the figures as a dict."""
    from app.core.db import migrate
    from tests.browser import running_server

    with (
        tempfile.TemporaryDirectory() as tmp,
        postgres_database() as url,
        assay_env(
            Path(tmp), database_url=url, web_workers=str(options.web_workers), **options.server
        ),
    ):
        migrate()
        project_id, tokens = setup(options.items, options.annotators)
        with running_server(Path(tmp)) as base:
            samples = asyncio.run(simulate(base, project_id, tokens, options))
        checks = integrity(project_id, samples)
    next_p50, next_p95 = percentiles(samples.next_s)
    submit_p50, submit_p95 = percentiles(samples.submit_s)
    return {
        "options": asdict(options),
        "requests": len(samples.next_s) + len(samples.submit_s),
        "next_items": len(samples.next_s),
        "next_p50_ms": next_p50,
        "next_p95_ms": next_p95,
        "submits": len(samples.submit_s),
        "submit_p50_ms": submit_p50,
        "submit_p95_ms": submit_p95,
        "labels_per_s": len(samples.acknowledged) / samples.seconds,
        "requests_per_s": (len(samples.next_s) + len(samples.submit_s)) / samples.seconds,
        "retries": samples.retries,
        "retries_ok": samples.retries_ok,
        "resent": samples.resent,
        "errors": dict(samples.errors),
        "empty_queue": samples.empty_queue,
        "seconds": samples.seconds,
        "client_cpu_s": samples.client_cpu_s,
        **checks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--duration", type=float, default=90.0, help="seconds of simulated work")
    parser.add_argument("--think", type=float, nargs=2, default=(0.5, 3.0), metavar=("MIN", "MAX"))
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--retry-fraction", type=float, default=0.1)
    parser.add_argument("--web-workers", type=int, default=2, help="ASSAY_WEB_WORKERS")
    args = parser.parse_args()
    results = []
    for annotators in args.annotators:
        options = Options(
            annotators,
            args.duration,
            tuple(args.think),
            args.items,
            args.retry_fraction,
            args.web_workers,
        )
        load_before = os.getloadavg()[0]
        result = run(options)
        result["loadavg_1min"] = (load_before, os.getloadavg()[0])
        print(json.dumps(result), flush=True)
        results.append(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(results, indent=2) + "\n")
    write_table(
        "load",
        f"Shared queue under load over HTTP, PostgreSQL, think time "
        f"{args.think[0]:g}-{args.think[1]:g} s",
        [
            "annotators",
            "next-item p50 ms",
            "next-item p95 ms",
            "submit p50 ms",
            "submit p95 ms",
            "labels/s",
            "requests/s",
            "errors",
            "double assigned",
            "lost",
            "duplicated",
            "sent twice (2xx)",
            "load average before, after",
        ],
        [
            [
                r["options"]["annotators"],
                r["next_p50_ms"],
                r["next_p95_ms"],
                r["submit_p50_ms"],
                r["submit_p95_ms"],
                r["labels_per_s"],
                r["requests_per_s"],
                sum(r["errors"].values()),
                r["double_assigned"],
                r["lost"],
                r["duplicated"],
                f"{r['retries']} ({r['retries_ok']})",
                f"{r['loadavg_1min'][0]:.1f}, {r['loadavg_1min'][1]:.1f}",
            ]
            for r in results
        ],
        note=f"{args.duration:g} s of work per row against `assay serve` ({args.web_workers} "
        f"uvicorn worker processes, `ASSAY_WEB_WORKERS`) on a fresh PostgreSQL database with "
        f"{args.items:,} queued items ranked by a model version, overlap 1; "
        f"{args.retry_fraction:.0%} of the labels sent twice with the same key (half at once, "
        "half one after the other); sent twice (2xx): such labels, and how many got 2xx both "
        "times. Double "
        "assigned: items decided by or served to two annotators; lost: 2xx labels not stored; "
        "duplicated: a key or an (item, annotator) stored twice. Load generator, server and "
        f"PostgreSQL on one machine ({os.cpu_count()} CPU cores) shared with other jobs; the "
        "1-minute load average before and after each row says how busy it was. Reproduce: "
        "`python -m bench.load`.",
    )


if __name__ == "__main__":
    main()
