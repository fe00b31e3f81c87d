"""Helpers the tests share: pointing the app at a database, broker and data directory."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

PG_ADMIN_DSN = os.environ.get("ASSAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("ASSAY_TEST_REDIS", "redis://127.0.0.1:6379/15")


def reset_caches() -> None:
    """Settings, engines and the Celery app are cached per process; drop them after env changes."""
    from app.core import db
    from app.core.config import get_settings
    from workers import celery_app

    if db.get_engine.cache_info().currsize:
        db.get_engine().dispose()
    get_settings.cache_clear()
    db.get_engine.cache_clear()
    db._session_factory.cache_clear()
    celery_app._celery.cache_clear()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped afterwards."""
    name = f"assay_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            + f"/{name}"
        )
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def assay_env(
    data_dir: Path, database_url: str | None = None, broker_url: str | None = None, **extra: str
) -> Iterator[dict[str, str]]:
    """Set ASSAY_* variables for this process (and any child it starts), then restore them."""
    values = {
        "ASSAY_DATA_DIR": str(data_dir),
        **{f"ASSAY_{k.upper()}": v for k, v in extra.items()},
    }
    if database_url:
        values["ASSAY_DATABASE_URL"] = database_url
    if broker_url:
        values["ASSAY_BROKER_URL"] = broker_url
    if database_url or broker_url:
        values.setdefault("ASSAY_SECRET_KEY", "test-secret-" + uuid.uuid4().hex)
    names = [n for n in os.environ if n.startswith("ASSAY_") and not n.startswith("ASSAY_TEST_")]
    saved = {n: os.environ.pop(n) for n in names}
    os.environ.update(values)
    reset_caches()
    try:
        yield values
    finally:
        for name in values:
            os.environ.pop(name, None)
        os.environ.update(saved)
        reset_caches()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def demo_rows(n: int, *, offset: int = 0, silver: bool = True) -> list[dict[str, str]]:
    """Real rows from the bundled Rotten Tomatoes file (gold label and VADER silver label)."""
    import csv
    import gzip

    from app.cli.demo import DATA_FILE

    with gzip.open(DATA_FILE, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))[offset : offset + n]
    return [
        {
            "id": r["id"],
            "text": r["text"],
            "label": r["silver_label"] if silver else r["label"],
            "reference_label": r["label"],
        }
        for r in rows
    ]


def to_csv(rows: list[dict[str, str]], columns: tuple[str, ...] = ("id", "text", "label")) -> bytes:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def database_rows() -> dict[str, list[tuple]]:
    """Every row of every table, in key order: compared before and after a request, it shows
    whether the request changed anything at all."""
    from sqlalchemy import select

    from app.core.db import get_engine
    from app.models import Base

    with get_engine().connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(
                    select(table).order_by(*table.primary_key.columns)
                ).all()
            ]
            for table in Base.metadata.sorted_tables
        }


ADMIN_PASSWORD = "pw-pw-pw-pw"  # admin_headers' admins


def admin_headers(username: str = "ada") -> dict[str, str]:
    """A new admin's API token as request headers (the database must be migrated); their
    password is ``ADMIN_PASSWORD``."""
    from app.core.auth import create_user, issue_token
    from app.core.db import session_scope
    from app.models import Role

    with session_scope() as session:
        admin = create_user(session, username, ADMIN_PASSWORD, Role.admin)
        return {"Authorization": f"Bearer {issue_token(session, admin, 'tests')}"}


def upload(client, headers, project_id, data: bytes, filename="silver.csv", kind="silver"):
    """A file uploaded as a dataset through the API; the response, for the test to check."""
    return client.post(
        f"/api/v1/projects/{project_id}/datasets",
        headers=headers,
        files={"file": (filename, data, "text/csv")},
        data={"kind": kind},
    )


def demo_datasets(sizes: dict[str, int]) -> dict[str, bytes]:
    """Consecutive demo rows as one CSV file per dataset kind, ``{kind: rows}`` in order
    (silver kinds carry VADER's label, the others the gold one)."""
    files, offset = {}, 0
    for kind, n in sizes.items():
        files[kind] = to_csv(demo_rows(n, offset=offset, silver=kind in ("silver", "extension")))
        offset += n
    return files


def upload_demo_project(client, headers: dict[str, str], name: str, sizes: dict[str, int]) -> int:
    """A project with ``demo_datasets(sizes)`` uploaded through the API; returns its id."""
    project = client.post(
        "/api/v1/projects", headers=headers, json={"name": name, "labels": ["fresh", "rotten"]}
    ).json()
    for kind, data in demo_datasets(sizes).items():
        response = upload(client, headers, project["id"], data, "f.csv", kind)
        assert response.status_code == 201, response.text
    return project["id"]


def train_and_wait(client, headers, project_id: int, log: Path, timeout_s: float) -> dict:
    """A training job started through the API and run by a real worker (its log at ``log``);
    the job as the API reports it once it succeeded or failed."""
    from app.cli.worker_process import start_worker, stop_worker

    worker = start_worker(log)
    try:
        job = client.post(f"/api/v1/projects/{project_id}/jobs", headers=headers, json={}).json()

        def done() -> bool:
            assert worker.poll() is None, log.read_text()[-3000:]
            state = client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json()
            return state["state"] in ("succeeded", "failed")

        wait_until(done, timeout_s, interval=0.5, what=f"job {job['id']}")
    finally:
        stop_worker(worker)
    return client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json()
