"""Faults with real processes: a killed worker, a restarted Redis, dropped database connections,
a web server killed while annotators submit. Jobs finish once, nothing is stored twice or lost,
and no job is left "running" by a worker that is gone.

Settings are shortened so that recovery happens within seconds (heartbeat, staleness, reaper,
Redis visibility timeout); every wait is generous, nothing is timed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.browser import start_server
from tests.seeding import add_members
from tests.support import (
    PG_ADMIN_DSN,
    admin_headers,
    assay_env,
    demo_rows,
    free_port,
    postgres_database,
    reset_caches,
    to_csv,
    upload_demo_project,
    wait_until,
)

N_TRAIN, N_DEV = 60, 30
SIZES = {"silver": N_TRAIN, "gold_dev": N_DEV}
JOB_TIMEOUT_S = 300
FAST_RECOVERY = {
    "job_heartbeat_interval_s": "0.5",
    "job_stale_after_s": "10",
    "job_reaper_interval_s": "1",
    "broker_visibility_timeout_s": "12",
    "compare_with_cleanlab": "false",
}


class PrivateRedis:
    """A redis-server of this test's own on a free port (never the shared one), no persistence:
    a restart loses everything it held, as a crashed cache would."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        import redis

        client = redis.Redis.from_url(self.url)
        wait_until(lambda: self._pings(client), 30, what="redis-server")

    @staticmethod
    def _pings(client) -> bool:
        import redis

        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _admin_with_project(client: TestClient) -> tuple[dict[str, str], int]:
    """An admin token and a project with real silver training rows and a gold dev set."""
    headers = admin_headers()
    return headers, upload_demo_project(client, headers, "p", SIZES)


def _start_job(client: TestClient, headers: dict[str, str], project_id: int) -> int:
    response = client.post(f"/api/v1/projects/{project_id}/jobs", headers=headers, json={})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _job(job_id: int):
    from app.core.db import session_scope
    from app.models import Job

    with session_scope() as session:
        return session.get(Job, job_id)


def _wait_state(job_id: int, states: tuple[str, ...], worker=None, log: Path | None = None):
    def reached():
        if worker is not None and worker.poll() is not None:
            raise AssertionError(f"the worker exited:\n{log.read_text()[-3000:] if log else ''}")
        job = _job(job_id)
        return job if job.state in states else None

    return wait_until(reached, JOB_TIMEOUT_S, interval=0.05, what=f"job {job_id} in {states}")


def _assert_one_set_of_results(job_id: int) -> None:
    """Exactly one model version for the job and one row per item and kind, none twice."""
    from app.core.db import session_scope
    from app.models import Influencer, ModelVersion, Prediction, Score

    with session_scope() as session:
        versions = session.scalars(select(ModelVersion).where(ModelVersion.job_id == job_id))
        versions = list(versions)
        assert len(versions) == 1
        version = versions[0]
        assert Path(version.artifact_path).exists()

        def count(model, *where):
            return session.scalar(
                select(func.count())
                .select_from(model)
                .where(model.model_version_id == version.id, *where)
            )

        assert count(Prediction) == N_TRAIN
        for kind in ("self_influence", "dev_influence", "loss", "suspicion"):
            assert count(Score, Score.kind == kind) == N_TRAIN, kind
        assert count(Influencer, Influencer.role != "proponent") == N_TRAIN * 2 * 3
        k = version.metrics["inffeed_k"]
        assert count(Influencer, Influencer.role == "proponent") == N_TRAIN * k
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 1


@contextmanager
def _worker(log: Path, **options) -> Iterator[subprocess.Popen]:
    from app.cli.worker_process import start_worker, stop_worker

    process = start_worker(log, **options)
    try:
        yield process
    finally:
        stop_worker(process)


@contextmanager
def _killed_mid_run(tmp_path: Path, start: Callable[[], int]) -> Iterator[tuple[int, Any, Path]]:
    """Start a job with one worker, SIGKILL that worker once the job runs, and let a second
    one finish it; yields the job id, its succeeded row and the log of the second worker,
    which runs until the block ends."""
    first_log, second_log = tmp_path / "worker1.log", tmp_path / "worker2.log"
    with _worker(first_log) as first:
        job_id = start()
        running = _wait_state(job_id, ("running", "succeeded", "failed"), first, first_log)
        assert running.state == "running" and running.attempts == 1, running.error
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    with _worker(second_log) as second:
        done = _wait_state(job_id, ("succeeded", "failed"), second, second_log)
        assert done.state == "succeeded", done.error
        assert done.attempts >= 2, "the killed run counts as an attempt"
        yield job_id, done, second_log


@pytest.fixture(params=["postgresql+redis", "sqlite+filesystem"])
def fault_env(request, tmp_path) -> Iterator[dict[str, str]]:
    """Production-like (PostgreSQL, a private Redis) and embedded (SQLite, filesystem broker)."""
    if request.param == "postgresql+redis":
        redis_server = PrivateRedis(tmp_path)
        redis_server.start()
        try:
            with (
                postgres_database() as url,
                assay_env(
                    tmp_path, database_url=url, broker_url=redis_server.url, **FAST_RECOVERY
                ) as env,
            ):
                yield env
        finally:
            redis_server.stop()
    else:
        with assay_env(tmp_path, **FAST_RECOVERY) as env:
            yield env


def test_killed_worker_job_is_retried_once_and_stored_once(fault_env, tmp_path):
    """SIGKILL the worker mid-job; a new worker finishes it (broker redelivery or the reaper),
    and a duplicate message afterwards changes nothing."""
    from app.main import create_app
    from app.services.jobs import enqueue
    from workers.celery_app import TRAIN_AND_SCORE

    with TestClient(create_app()) as client:
        headers, project_id = _admin_with_project(client)
        with _killed_mid_run(tmp_path, lambda: _start_job(client, headers, project_id)) as (
            job_id,
            done,
            second_log,
        ):
            _assert_one_set_of_results(job_id)

            celery_id = enqueue(job_id, TRAIN_AND_SCORE)  # a duplicate delivery
            wait_until(
                lambda: f"[{celery_id}] succeeded" in second_log.read_text(),
                JOB_TIMEOUT_S,
                what="the duplicate message to be handled",
            )
        again = _job(job_id)
        assert (again.state, again.attempts) == ("succeeded", done.attempts)
        _assert_one_set_of_results(job_id)
        polled = client.get(f"/api/v1/jobs/{job_id}", headers=headers).json()
        assert polled["state"] == "succeeded" and polled["progress"] == 1.0
        assert polled["attempts"] == done.attempts


def test_killed_worker_mid_import_imports_once(fault_env, tmp_path, monkeypatch):
    """SIGKILL the worker while a background import runs: nothing half-written stays, the
    reaper gives the job to a new worker, and every row is stored exactly once."""
    from app.core.db import session_scope
    from app.main import create_app
    from app.models import Dataset, Item

    monkeypatch.setenv("ASSAY_IMPORT_BACKGROUND_BYTES", "1000")  # this upload goes to a worker
    reset_caches()
    rows = 60_000
    data = "id,text,label\n" + "".join(
        f"r{i},review number {i} of the import,{('fresh', 'rotten')[i % 2]}\n" for i in range(rows)
    )
    with TestClient(create_app()) as client:
        headers = admin_headers()
        project = client.post(
            "/api/v1/projects", headers=headers, json={"name": "p", "labels": ["fresh", "rotten"]}
        ).json()

        def upload() -> int:
            response = client.post(
                f"/api/v1/projects/{project['id']}/datasets",
                headers=headers,
                files={"file": ("big.csv", data.encode())},
                data={"kind": "silver"},
            )
            assert response.status_code == 202, response.text
            return response.json()["id"]

        with _killed_mid_run(tmp_path, upload) as (_, done, _):
            assert done.stage == f"imported {rows} rows"
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Item)) == rows
        assert session.scalar(select(func.count()).select_from(Dataset)) == 1
    assert not list((tmp_path / "uploads").iterdir()), "the spooled file is removed at the end"


def test_killed_prefork_child_job_is_retried(tmp_path):
    """With the prefork pool the task runs in a child process: SIGKILL the child mid-job; the
    worker forks a new one (its children get their own database connections) and the job
    finishes, stored once."""
    from app.main import create_app

    with assay_env(tmp_path, **FAST_RECOVERY), TestClient(create_app()) as client:
        headers, project_id = _admin_with_project(client)
        log = tmp_path / "worker.log"
        with _worker(log, pool="prefork", concurrency=1) as worker:
            job_id = _start_job(client, headers, project_id)
            _wait_state(job_id, ("running",), worker, log)
            children = subprocess.run(
                ["pgrep", "-P", str(worker.pid)], capture_output=True, text=True, check=True
            ).stdout.split()
            assert len(children) == 1, children
            os.kill(int(children[0]), signal.SIGKILL)
            done = _wait_state(job_id, ("succeeded", "failed"), worker, log)
        assert done.state == "succeeded", done.error
        assert done.attempts >= 2
        _assert_one_set_of_results(job_id)


def test_job_of_a_dead_worker_is_failed_not_left_running(tmp_path):
    """The only worker is SIGKILLed and never replaced: the web process's reaper fails the
    job with an error that says why (one attempt allowed here)."""
    from app.main import create_app

    with (
        assay_env(tmp_path, job_max_attempts="1", **FAST_RECOVERY),
        TestClient(create_app()) as client,
    ):
        headers, project_id = _admin_with_project(client)
        log = tmp_path / "worker.log"
        with _worker(log) as worker:
            job_id = _start_job(client, headers, project_id)
            assert _wait_state(job_id, ("running",), worker, log).state == "running"
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()

        def settled():
            polled = client.get(f"/api/v1/jobs/{job_id}", headers=headers).json()
            return polled if polled["state"] != "running" else None

        polled = wait_until(settled, JOB_TIMEOUT_S, what="the reaper")
        assert polled["state"] == "failed"
        assert (
            "worker was lost" in polled["error"] and "ASSAY_JOB_MAX_ATTEMPTS=1" in polled["error"]
        )
        assert polled["finished_at"]
        # the project is free again: a new job is accepted
        _start_job(client, headers, project_id)


def test_import_failed_for_good_by_the_reaper_removes_its_upload(tmp_path):
    """An import whose worker was lost on its last attempt is failed by the reaper, and the
    spooled upload it will never read again is removed with it."""
    from datetime import timedelta

    from app.core.db import migrate, session_scope
    from app.models import Job, JobKind, JobState, utcnow
    from app.services.job_reaper import reap_stale_jobs
    from app.services.projects import create_project

    with assay_env(tmp_path, job_max_attempts="1", **FAST_RECOVERY):
        migrate()
        upload = tmp_path / "uploads" / "spooled.csv"
        upload.parent.mkdir()
        upload.write_text("id,text,label\n1,a,fresh\n")
        with session_scope() as session:
            project = create_project(session, "p", ["fresh", "rotten"])
            session.flush()
            job = Job(
                project_id=project.id,
                kind=JobKind.import_dataset,
                params={"path": str(upload), "filename": "a.csv", "kind": "silver"},
                state=JobState.running,
                attempts=1,
                heartbeat_at=utcnow() - timedelta(hours=1),
            )
            session.add(job)
            session.flush()
            job_id = job.id
        assert reap_stale_jobs() == {job_id: JobState.failed}
        assert _job(job_id).state == JobState.failed
        assert not upload.exists()


def test_redis_restart_mid_job(private_redis, tmp_path):
    """Redis goes away while a job runs: the job finishes, the web process keeps answering (a
    new job says 503 and is failed, not left queued), and once Redis is back the same worker
    takes new work."""
    from app.main import create_app

    with (
        postgres_database() as url,
        assay_env(tmp_path, database_url=url, broker_url=private_redis.url, **FAST_RECOVERY),
        TestClient(create_app()) as client,
    ):
        headers, project_id = _admin_with_project(client)
        other_id = upload_demo_project(client, headers, "other", SIZES)
        log = tmp_path / "worker.log"
        with _worker(log) as worker:
            job_id = _start_job(client, headers, project_id)
            _wait_state(job_id, ("running",), worker, log)
            private_redis.stop()
            assert client.get(f"/api/v1/jobs/{job_id}", headers=headers).status_code == 200
            assert client.get(f"/api/v1/projects/{project_id}", headers=headers).status_code == 200
            refused = client.post(f"/api/v1/projects/{other_id}/jobs", headers=headers, json={})
            assert refused.status_code == 503, refused.text
            private_redis.start()

            done = _wait_state(job_id, ("succeeded", "failed"), worker, log)
            assert done.state == "succeeded", done.error
            _assert_one_set_of_results(job_id)
            refused_job = _job(int(refused.json()["detail"].split()[1]))
            assert refused_job.state == "failed" and "broker" in refused_job.error

            second = _start_job(client, headers, other_id)
            later = _wait_state(second, ("succeeded", "failed"), worker, log)
            assert later.state == "succeeded", later.error


def test_queued_job_survives_a_redis_restart(private_redis, tmp_path):
    """A job is queued while no worker runs, and Redis restarts empty (no persistence): the
    reaper sends it again, and a worker started afterwards runs it once."""
    from app.main import create_app

    with (
        postgres_database() as url,
        assay_env(tmp_path, database_url=url, broker_url=private_redis.url, **FAST_RECOVERY),
        TestClient(create_app()) as client,
    ):
        headers, project_id = _admin_with_project(client)
        job_id = _start_job(client, headers, project_id)
        private_redis.stop()  # the queued message goes with it
        private_redis.start()
        log = tmp_path / "worker.log"
        with _worker(log) as worker:
            done = _wait_state(job_id, ("succeeded", "failed"), worker, log)
        assert done.state == "succeeded", done.error
        assert done.attempts == 1, "messages sent again are no-ops once the job is taken"
        _assert_one_set_of_results(job_id)


def _backends(database: str, condition: str = "TRUE") -> list[int]:
    """Server processes of the connections to ``database`` (the app's and the worker's) that
    match ``condition`` (SQL over pg_stat_activity)."""
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            f" WHERE datname = %s AND pid <> pg_backend_pid() AND {condition}",
            (database,),
        ).fetchall()
    return [pid for (pid,) in rows]


def _terminate(pids: list[int]) -> int:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return len(pids)


def test_database_connections_dropped_mid_job_and_mid_request(tmp_path):
    """Every PostgreSQL connection of the web process and the worker is terminated, again and
    again until the job is over, while requests are served: the job still succeeds, once, and
    once the terminations stop every request succeeds."""
    from app.main import create_app

    with (
        postgres_database() as url,
        assay_env(tmp_path, database_url=url, **FAST_RECOVERY),
        TestClient(create_app(), raise_server_exceptions=False) as client,
    ):
        database = url.rsplit("/", 1)[1]
        headers, project_id = _admin_with_project(client)
        log = tmp_path / "worker.log"
        stop = threading.Event()
        answered: list[int] = []

        def ask() -> None:
            while not stop.is_set():
                for path in (f"/api/v1/projects/{project_id}/items?limit=50", "/healthz"):
                    answered.append(client.get(path, headers=headers).status_code)

        with _worker(log) as worker:
            job_id = _start_job(client, headers, project_id)
            _wait_state(job_id, ("running",), worker, log)
            asker = threading.Thread(target=ask)
            asker.start()
            terminated = 0
            try:  # until the job is over (or a minute): hits reads, heartbeats and the store
                for _ in range(150):
                    terminated += _terminate(_backends(database))
                    if _job(job_id).state not in ("queued", "running"):
                        break
                    stop.wait(0.4)
            finally:
                stop.set()
                asker.join()
            assert terminated > 0
            done = _wait_state(job_id, ("succeeded", "failed"), worker, log)
            assert done.state == "succeeded", done.error
            _assert_one_set_of_results(job_id)
        assert answered, "requests were made while connections were dropped"
        assert set(answered) <= {200, 503}, Counter(answered)  # a drop is a 503 to retry
        after = [
            client.get(f"/api/v1/projects/{project_id}/items?limit=50", headers=headers)
            for _ in range(5)
        ]
        assert [r.status_code for r in after] == [200] * 5
        assert client.get(f"/api/v1/jobs/{job_id}", headers=headers).json()["state"] == "succeeded"


def test_unreachable_database_is_a_503_to_retry(tmp_path):
    """Nothing listens where the database should be: the API and the health check answer 503
    with Retry-After, not a 500 or a hang."""
    from app.main import create_app

    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/assay"
        with (
            assay_env(tmp_path, database_url=url),
            TestClient(create_app(run_migrations=False), raise_server_exceptions=False) as client,
        ):
            for response in (
                client.get("/api/v1/projects", headers={"Authorization": "Bearer x"}),
                client.get("/healthz"),
            ):
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"]
                assert "database is unavailable" in response.json()["detail"]


def test_database_connection_dropped_while_storing_results(tmp_path):
    """The worker's connection is terminated in the middle of the transaction that stores the
    results (held there by a table lock): nothing of it is kept, the run gives the job back,
    and the second attempt stores one set of results."""
    from app.main import create_app

    with (
        postgres_database() as url,
        assay_env(tmp_path, database_url=url, **FAST_RECOVERY),
        TestClient(create_app()) as client,
    ):
        database = url.rsplit("/", 1)[1]
        headers, project_id = _admin_with_project(client)
        log = tmp_path / "worker.log"
        with (
            psycopg.connect(PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}") as blocker,
            _worker(log) as worker,
        ):
            # SHARE: reads go on, the INSERT of the results waits
            blocker.execute("LOCK TABLE model_versions IN SHARE MODE")
            job_id = _start_job(client, headers, project_id)

            def storing_backend() -> list[int]:
                assert worker.poll() is None, log.read_text()[-3000:]
                waiting = "wait_event_type = 'Lock' AND query ILIKE 'INSERT INTO model_versions%%'"
                return _backends(database, waiting)

            pids = wait_until(storing_backend, JOB_TIMEOUT_S, what="the worker storing results")
            assert _terminate(pids) == 1
            blocker.rollback()  # the lock goes; the job must come back and finish

            done = _wait_state(job_id, ("succeeded", "failed"), worker, log)
        assert done.state == "succeeded", done.error
        assert done.attempts == 2, "the cut-off run gave the job back; a second run stored it"
        _assert_one_set_of_results(job_id)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_web_restart_while_annotators_submit(database, tmp_path):
    """Three annotators label through the queue API with idempotency keys and retry on
    connection errors; the server is SIGKILLed and restarted twice meanwhile. Every submission
    is stored exactly once and none is lost."""
    from app.core.auth import create_user, issue_token
    from app.core.db import migrate, session_scope
    from app.models import LabelEvent, Role

    n_items = 45
    with (
        postgres_database() if database == "postgresql" else _no_url() as url,
        assay_env(tmp_path, database_url=url) as _,
    ):
        migrate()
        with session_scope() as session:
            tokens = {
                name: issue_token(session, create_user(session, name, "pw-pw-pw-pw", role), "t")
                for name, role in (
                    ("ada", Role.admin),
                    ("ann", Role.annotator),
                    ("bob", Role.annotator),
                    ("cy", Role.annotator),
                )
            }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(tmp_path, port, "--no-worker")
        try:
            admin = {"Authorization": f"Bearer {tokens['ada']}"}
            project = httpx.post(
                f"{base}/api/v1/projects",
                headers=admin,
                json={"name": "q", "labels": ["fresh", "rotten"]},
            ).json()
            upload = httpx.post(
                f"{base}/api/v1/projects/{project['id']}/datasets",
                headers=admin,
                files={"file": ("f.csv", to_csv(demo_rows(n_items)))},
                data={"kind": "silver"},
                timeout=60,
            )
            assert upload.status_code == 201, upload.text
            add_members(project["id"], "ann", "bob", "cy")

            submitted: dict[str, tuple[int, str, str]] = {}  # key -> (item, user, label)
            errors: list[str] = []
            annotators = [name for name in tokens if name != "ada"]
            threads = [
                threading.Thread(
                    target=_annotate,
                    args=(base, project["id"], name, tokens[name], submitted, errors),
                )
                for name in annotators
            ]
            for thread in threads:
                thread.start()
            for restart_after in (n_items // 4, n_items // 2):
                wait_until(lambda n=restart_after: len(submitted) >= n or errors, 300)
                server.kill()  # SIGKILL: requests in flight get no answer
                server.wait()
                server = start_server(tmp_path, port, "--no-worker")
            for thread in threads:
                thread.join(timeout=300)
            assert not errors, errors
            assert not any(thread.is_alive() for thread in threads)
        finally:
            server.kill()
            server.wait()

        with session_scope() as session:
            events = session.execute(
                select(LabelEvent.idempotency_key, LabelEvent.item_id, LabelEvent.new_label).where(
                    LabelEvent.source != "import"
                )
            ).all()
        stored = {key: (item, label) for key, item, label in events}
        assert len(events) == len(stored), "no key stored twice"
        assert set(stored) == set(submitted), "every submission stored, nothing else"
        assert all(stored[k] == (item, label) for k, (item, _, label) in submitted.items())
        assert len({item for item, _, _ in submitted.values()}) == n_items, "all items decided"


@contextmanager
def _no_url() -> Iterator[None]:
    yield None


def _annotate(
    base: str,
    project_id: int,
    name: str,
    token: str,
    submitted: dict[str, tuple[int, str, str]],
    errors: list[str],
) -> None:
    """Take the next item and label it until the queue is empty, retrying every request that
    got no answer (or a 5xx) with the same idempotency key, as the queue page does."""
    headers = {"Authorization": f"Bearer {token}"}

    def send(method: str, path: str, **kwargs) -> httpx.Response:
        def attempt():
            try:
                response = httpx.request(method, base + path, headers=headers, timeout=30, **kwargs)
            except httpx.TransportError:
                return None
            return response if response.status_code < 500 else None

        return wait_until(attempt, 300, interval=0.2, what=f"{name}: {method} {path}")

    try:
        while True:
            taken = send("POST", f"/api/v1/projects/{project_id}/queue/next")
            if taken.status_code == 204:
                return
            assert taken.status_code == 200, taken.text
            item = taken.json()
            label = "fresh" if item["id"] % 2 else "rotten"
            key = uuid.uuid4().hex
            answer = send(
                "POST",
                f"/api/v1/items/{item['id']}/label",
                json={"label": label, "idempotency_key": key},
            )
            assert answer.status_code == 200, answer.text
            submitted[key] = (item["id"], name, label)
    except Exception as err:  # reported by the main thread
        errors.append(f"{name}: {type(err).__name__}: {err}")
