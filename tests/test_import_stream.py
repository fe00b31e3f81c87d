"""The streamed import: row by row from disk, in small batches, all rows or none.

The batch size is set to a few rows so that every file here spans many batches: a bad row at
the end must roll back batches already sent to the database.
"""

from __future__ import annotations

import json

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support import (
    REDIS_URL,
    assay_env,
    demo_rows,
    postgres_database,
    to_csv,
    upload,
    wait_until,
)

BATCH = 7
ROWS = 300
COLUMNS = ("id", "text", "label", "split", "reference_label", "source")


@pytest.fixture
def small_batches(backend, monkeypatch):
    """After ``backend`` has set this test's environment (it replaces every ASSAY_ variable)."""
    monkeypatch.setenv("ASSAY_IMPORT_BATCH_ROWS", str(BATCH))
    from app.core.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _rows(n: int = ROWS) -> list[dict[str, str]]:
    splits = ("", "train", "dev", "test")
    return [
        {**row, "split": splits[i % 4], "source": f"s{i % 5}"} for i, row in enumerate(demo_rows(n))
    ]


def _as_jsonl(rows: list[dict[str, str]]) -> bytes:
    return "".join(
        json.dumps({k: v for k, v in row.items() if v != ""}) + "\n" for row in rows
    ).encode()


def _stored(project_id: int) -> list[tuple]:
    from app.core.db import session_scope
    from app.models import Item

    with session_scope() as session:
        return [
            (
                item.external_id,
                item.text,
                item.dataset_kind,
                item.silver_label,
                item.gold_label,
                item.reference_label,
                item.current_label,
                item.status,
                item.payload,
            )
            for item in session.scalars(
                select(Item).where(Item.project_id == project_id).order_by(Item.id)
            )
        ]


def _counts(project_id: int) -> tuple[int, int]:
    from app.core.db import session_scope
    from app.models import Dataset, Item

    with session_scope() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(m).where(m.project_id == project_id))
            for m in (Item, Dataset)
        )


def _expected(rows: list[dict[str, str]], kind: str) -> list[tuple]:
    """What the rows should become, by the documented rules (split, gold vs silver)."""
    kinds = {"dev": "gold_dev", "test": "test"}
    out = []
    for row in rows:
        item_kind = kinds.get(row["split"], kind)
        gold = item_kind in ("gold_train", "gold_dev", "test")
        out.append(
            (
                row["id"],
                row["text"].strip(),
                item_kind,
                None if gold else row["label"],
                row["label"] if gold else None,
                row["reference_label"],
                row["label"],
                "reviewed" if gold else "pending",
                {"source": row["source"]},
            )
        )
    return sorted(out, key=lambda r: (r[2], r[0]))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.usefixtures("small_batches")
def test_streamed_import_stores_every_row_as_documented(client, admin_headers, project, fmt):
    rows = _rows()
    data = to_csv(rows, COLUMNS) if fmt == "csv" else _as_jsonl(rows)
    response = upload(client, admin_headers, project["id"], data, f"rows.{fmt}")
    assert response.status_code == 201, response.text
    by_kind = {d["kind"]: d["row_count"] for d in response.json()}
    assert by_kind == {"silver": ROWS // 2, "gold_dev": ROWS // 4, "test": ROWS // 4}
    stored = sorted(_stored(project["id"]), key=lambda r: (r[2], r[0]))
    assert stored == _expected(rows, "silver")


@pytest.mark.parametrize(
    ("fmt", "line"),
    [("csv", ROWS + 1), ("jsonl", ROWS)],  # the CSV header is line 1
)
@pytest.mark.usefixtures("small_batches")
def test_bad_last_row_stores_nothing_and_names_its_line(client, admin_headers, project, fmt, line):
    rows = _rows()
    rows[-1] = {**rows[-1], "label": "stale"}
    data = to_csv(rows, COLUMNS) if fmt == "csv" else _as_jsonl(rows)
    response = upload(client, admin_headers, project["id"], data, f"bad.{fmt}")
    assert response.status_code == 422, response.text
    assert response.json() == {
        "file": f"bad.{fmt}",
        "line": line,
        "field": "label",
        "message": "unknown label 'stale' (project labels: fresh, rotten)",
    }
    assert _counts(project["id"]) == (0, 0)


@pytest.mark.usefixtures("small_batches")
def test_duplicate_id_batches_apart_names_both_lines(client, admin_headers, project):
    rows = _rows()
    rows[250] = {**rows[250], "id": rows[3]["id"]}
    response = upload(client, admin_headers, project["id"], to_csv(rows, COLUMNS), "dup.csv")
    assert response.status_code == 422, response.text
    assert response.json()["line"] == 252 and response.json()["field"] == "id"
    assert "(first on line 5)" in response.json()["message"]
    assert _counts(project["id"]) == (0, 0)


@pytest.mark.usefixtures("small_batches")
def test_bad_utf8_deep_in_the_file_names_its_line(client, admin_headers, project):
    data = to_csv(_rows(), COLUMNS).split(b"\n")
    data[200] = data[200] + b"\xff"
    response = upload(client, admin_headers, project["id"], b"\n".join(data), "latin.csv")
    assert response.status_code == 422, response.text
    assert response.json()["line"] == 201
    assert "not valid UTF-8 (byte 0xff)" in response.json()["message"]
    assert _counts(project["id"]) == (0, 0)


@pytest.fixture
def worker_env(tmp_path):
    """PostgreSQL and Redis, uploads over 1 KB imported in the background by a real worker."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    with (
        postgres_database() as url,
        assay_env(
            tmp_path,
            database_url=url,
            broker_url=REDIS_URL,
            import_background_bytes="1000",
            import_batch_rows=str(BATCH),
        ) as env,
    ):
        yield env


def test_large_upload_imports_as_a_background_job(worker_env, tmp_path):
    from app.cli.worker_process import start_worker, stop_worker
    from app.core.auth import create_user, issue_token
    from app.core.db import session_scope
    from app.main import create_app
    from app.models import Role

    with TestClient(create_app()) as client:
        with session_scope() as session:
            user = create_user(session, "ada", "pw-pw-pw-pw", Role.admin)
            headers = {"Authorization": f"Bearer {issue_token(session, user, 't')}"}
        project = client.post(
            "/api/v1/projects", headers=headers, json={"name": "p", "labels": ["fresh", "rotten"]}
        ).json()
        rows = _rows()
        bad = [*rows[:-1], {**rows[-1], "text": "  "}]
        worker = start_worker(tmp_path / "worker.log")
        try:
            jobs = {}
            for name, data in (
                ("bad.csv", to_csv(bad, COLUMNS)),
                ("ok.csv", to_csv(rows, COLUMNS)),
            ):
                response = upload(client, headers, project["id"], data, name)
                assert response.status_code == 202, response.text
                job = response.json()
                # the reply is read back after the task was sent: a quick worker may hold it
                assert job["kind"] == "import" and job["state"] in ("queued", "running")

                def finished(job_id=job["id"]):
                    assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
                    polled = client.get(f"/api/v1/jobs/{job_id}", headers=headers).json()
                    return polled if polled["state"] in ("succeeded", "failed") else None

                jobs[name] = wait_until(finished, 120, interval=0.2, what="the import job")
                if name == "bad.csv":
                    assert _counts(project["id"]) == (0, 0)
        finally:
            stop_worker(worker)
    assert jobs["bad.csv"]["state"] == "failed"
    assert jobs["bad.csv"]["error"] == f"bad.csv, line {ROWS + 1}, field 'text': empty text"
    assert jobs["ok.csv"]["state"] == "succeeded" and jobs["ok.csv"]["progress"] == 1.0
    assert sorted(_stored(project["id"]), key=lambda r: (r[2], r[0])) == _expected(rows, "silver")
    assert not list((tmp_path / "uploads").iterdir()), "the spooled files are removed"


def test_cli_import_streams_a_file_all_or_nothing(tmp_path):
    from tests.test_cli import run

    env = {"ASSAY_DATA_DIR": str(tmp_path), "ASSAY_IMPORT_BATCH_ROWS": str(BATCH)}
    with assay_env(tmp_path):
        from app.core.db import migrate, session_scope
        from app.services.projects import create_project

        migrate()
        with session_scope() as session:
            project_id = create_project(session, "Reviews", ["fresh", "rotten"]).id
    rows = _rows()
    bad, good = tmp_path / "bad.jsonl", tmp_path / "good.csv"
    bad.write_bytes(_as_jsonl([*rows[:-1], {**rows[-1], "split": "later"}]))
    good.write_bytes(to_csv(rows, COLUMNS))
    failed = run(["import", "Reviews", str(bad), "--kind", "extension"], env)
    assert failed.returncode == 1
    assert f"bad.jsonl, line {ROWS}, field 'split'" in failed.stderr
    done = run(["import", str(project_id), str(good), "--kind", "extension"], env)
    assert done.returncode == 0, done.stderr
    assert "extension: 150, gold_dev: 75, test: 75" in done.stdout
    with assay_env(tmp_path):
        stored = sorted(_stored(project_id), key=lambda r: (r[2], r[0]))
    assert stored == _expected(rows, "extension")


@pytest.mark.usefixtures("small_batches")
def test_page_upload_streams_and_reports_the_bad_line(client, project):
    from app.core.auth import create_user
    from app.core.db import session_scope
    from app.models import Role
    from tests.seeding import PASSWORD, page_login

    with session_scope() as session:
        create_user(session, "pat", PASSWORD, Role.admin)
    headers = {"X-CSRF-Token": page_login(client, "pat")}
    rows = _rows()
    bad = to_csv([*rows[:-1], {**rows[-1], "label": "stale"}], COLUMNS)
    url = f"/projects/{project['id']}/datasets"
    refused = client.post(url, headers=headers, files={"file": ("bad.csv", bad)})
    assert refused.status_code == 422
    assert f"bad.csv, line {ROWS + 1}, field &#39;label&#39;" in refused.text
    assert _counts(project["id"]) == (0, 0)
    done = client.post(
        url,
        headers=headers,
        files={"file": ("ok.csv", to_csv(rows, COLUMNS))},
        data={"kind": "extension"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    stored = sorted(_stored(project["id"]), key=lambda r: (r[2], r[0]))
    assert stored == _expected(rows, "extension")
