"""Sharded scoring: the demo project trained and scored unsharded, then in shards by one and by
two Celery workers (PostgreSQL + Redis, each worker concurrency 1), wall time of each job.

The project is ``assay demo``'s: 500 gold + 8,000 VADER-silver training rows, 1,000 gold dev,
the rest of the bundled file as test. Every run starts with an empty embeddings cache, so
each one embeds all the texts. The sharded runs' scores are compared with the unsharded ones.

    python -m bench.sharded [--shard-size 2000] [--extension 8000]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np
import redis
from sqlalchemy import select

from bench.common import Timer, machine, write_table
from tests.support import assay_env, postgres_database, wait_until

REDIS_URL = os.environ.get("ASSAY_BENCH_REDIS", "redis://127.0.0.1:6379/14")
JOB_TIMEOUT_S = 3 * 3600


STEPS = ("embed_shard", "fit_sharded", "score_shard", "merge_shards")
LOG_LINE = re.compile(r"^\[([\d-]+ [\d:,]+): INFO/MainProcess\] Task assay\.(\w+)\[")


def step_seconds(logs: list[str]) -> dict[str, float]:
    """Per sharded step, first task received to last task done, over all workers' logs."""
    seen: dict[str, list[datetime]] = {}
    for text in logs:
        for line in text.splitlines():
            match = LOG_LINE.match(line)
            if match and ("received" in line or "succeeded in" in line):
                when = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f")
                seen.setdefault(match[2], []).append(when)
    return {
        step: (max(seen[step]) - min(seen[step])).total_seconds() for step in STEPS if step in seen
    }


def run_job(
    project_id: int, data_dir: Path, name: str, shard_size: int, workers: int
) -> tuple[float, dict[str, float]]:
    """Seconds from submitting a training job to its success, with ``workers`` fresh workers,
    and the seconds of each sharded step."""
    from app.cli.worker_process import start_worker, stop_worker
    from app.core.db import session_scope
    from app.models import Job, JobState, Project
    from app.services.jobs import start_train_score
    from workers.celery_app import current_celery

    shutil.rmtree(data_dir / "artifacts" / "embeddings", ignore_errors=True)
    env = {"ASSAY_SHARD_SIZE": str(shard_size)}
    logs = [data_dir / f"{name}-{i}.log" for i in range(workers)]
    processes = [
        start_worker(log, env=env, hostname=f"{name}-{i}@%h") for i, log in enumerate(logs)
    ]
    try:
        wait_until(lambda: len(current_celery().control.ping(timeout=1.0)) == workers, 300)
        with Timer() as timer:
            with session_scope() as session:
                job_id = start_train_score(session, session.get(Project, project_id)).id

            def finished() -> Job | None:
                with session_scope() as session:
                    job = session.get(Job, job_id)
                    return job if job.state in (JobState.succeeded, JobState.failed) else None

            job = wait_until(finished, JOB_TIMEOUT_S, interval=0.2, what=name)
    finally:
        for process in processes:
            stop_worker(process)
    if job.state != JobState.succeeded:
        raise RuntimeError(f"{name}: {job.error}")
    return timer.seconds, step_seconds([log.read_text() for log in logs])


def scores(project_id: int, version: int) -> dict[str, np.ndarray]:
    """A model version's scores by kind, in item order."""
    from app.core.db import session_scope
    from app.models import ModelVersion, Score

    with session_scope() as session:
        version_id = session.scalar(
            select(ModelVersion.id).where(
                ModelVersion.project_id == project_id, ModelVersion.version == version
            )
        )
        rows = session.execute(
            select(Score.kind, Score.item_id, Score.value)
            .where(Score.model_version_id == version_id)
            .order_by(Score.kind, Score.item_id)
        ).all()
    out: dict[str, list[float]] = {}
    for kind, _, value in rows:
        out.setdefault(kind, []).append(value)
    return {kind: np.asarray(values) for kind, values in out.items()}


def ranks(project_id: int, version: int) -> list[int]:
    from app.core.db import session_scope
    from app.models import ModelVersion, Prediction

    with session_scope() as session:
        return list(
            session.scalars(
                select(Prediction.suspicion_rank)
                .join(ModelVersion, ModelVersion.id == Prediction.model_version_id)
                .where(ModelVersion.project_id == project_id, ModelVersion.version == version)
                .order_by(Prediction.item_id)
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shard-size", type=int, default=2000)
    parser.add_argument("--extension", type=int, default=8000, help="VADER-silver rows")
    args = parser.parse_args()
    from app.cli.demo import create_demo_project
    from app.core.db import migrate

    load_before = os.getloadavg()
    runs = [("unsharded", 0, 1), ("sharded", args.shard_size, 1), ("sharded", args.shard_size, 2)]
    rows = []
    redis.Redis.from_url(REDIS_URL).flushdb()
    with (
        tempfile.TemporaryDirectory() as tmp,
        postgres_database() as url,
        assay_env(
            Path(tmp),
            database_url=url,
            broker_url=REDIS_URL,
            demo_extension=str(args.extension),
        ),
    ):
        migrate()
        project_id = create_demo_project()
        for mode, size, workers in runs:
            load = os.getloadavg()[0]
            seconds, steps = run_job(project_id, Path(tmp), f"{mode}{workers}", size, workers)
            print(f"{mode}, {workers} worker(s): {seconds:.1f} s {steps}", flush=True)
            rows.append(
                [
                    mode,
                    size or "-",
                    workers,
                    f"{load:.1f}",
                    seconds,
                    *(steps.get(step, "-") for step in STEPS),
                ]
            )
        whole, whole_ranks = scores(project_id, 1), ranks(project_id, 1)
        n_train = len(whole["loss"])
        for version, row in enumerate(rows, start=1):
            other = scores(project_id, version)
            diff = max(
                float(np.max(np.abs(other[k] - v) / np.maximum(np.abs(v), 1e-12)))
                for k, v in whole.items()
            )
            same = ranks(project_id, version) == whole_ranks
            row += [rows[0][4] / row[4], f"{diff:.1e}", "yes" if same else "no"]
    load_after = os.getloadavg()
    write_table(
        "sharded",
        f"Sharded scoring: {n_train:,} training items, one job, wall time",
        [
            "mode",
            "shard size",
            "workers",
            "load avg at start",
            "seconds",
            "embedding shards s",
            "fit s",
            "scoring shards s",
            "merge s",
            "speed-up",
            "max rel. score diff",
            "same ranks",
        ],
        rows,
        note=(
            f"`assay demo`'s project ({n_train:,} training rows, 1,000 gold dev, the rest of the "
            "bundled file as test; every score kind stored per item); PostgreSQL and Redis on "
            "this machine; each worker a separate process with concurrency 1; every run embeds "
            "all texts (empty cache). Seconds: job submitted to succeeded, worker start-up "
            "excluded; a step's seconds run from its first task received to its last done, on "
            "any worker. Score difference: largest relative difference from the unsharded run over "
            f"every stored score. Load average before {load_before[0]:.1f}, after "
            f"{load_after[0]:.1f} (1-minute averages; others' jobs shared the machine); "
            "2 workers on 2 cores is this machine's ceiling, and torch already uses both cores "
            "in one worker. "
            f"{machine()}. Reproduce: `python -m bench.sharded`."
        ),
    )


if __name__ == "__main__":
    main()
