"""Python clients against a real server and worker, on PostgreSQL + Redis and SQLite + the
filesystem broker: one generated from the served OpenAPI document by openapi-python-client (as
Python users make theirs), and the one shipped in app/client.py. Each uploads a tiny project,
trains it, pages through its items, labels one and exports the project.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.browser import running_server
from tests.support import ADMIN_PASSWORD, admin_headers, demo_datasets, to_csv, wait_until
from tests.test_worker import JOB_TIMEOUT_S, live_env  # noqa: F401 (the fixture)

SIZES = {"silver": 20, "gold_dev": 6, "test": 6}  # tests/test_tiny_project.py: trains in seconds
ITEMS = sum(SIZES.values())
PAGE = 7  # items per page: five pages
LABELS = ["fresh", "rotten"]


def _other(label: str) -> str:
    return next(other for other in LABELS if other != label)


def _worker_log(data_dir: Path) -> str:
    return (data_dir / "worker.log").read_text()[-3000:]


def _generate(base: str, directory: Path, monkeypatch) -> str:
    """A client package generated from the server's document; its (unique) import name."""
    document = directory / "openapi.json"
    document.write_text(httpx.get(f"{base}/api/v1/openapi.json").text)
    config = directory / "openapi-python-client.yaml"
    config.write_text("post_hooks: []\n")  # formatting the generated code is the user's affair
    package = f"assay_api_{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "openapi_python_client", "generate", "--meta", "none"]
    command += ["--path", str(document), "--output-path", str(directory / package)]
    generated = subprocess.run(
        [*command, "--config", str(config)], capture_output=True, text=True, timeout=120
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    # a part of the document it cannot read (a body or a response) is only a warning
    assert "Warning" not in generated.stdout + generated.stderr, generated.stdout
    monkeypatch.syspath_prepend(str(directory))
    return package


def test_a_generated_client_uploads_trains_pages_labels_and_exports(
    live_env,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    with running_server(tmp_path, "--worker") as base:
        token = admin_headers()["Authorization"].removeprefix("Bearer ")
        package = _generate(base, tmp_path, monkeypatch)

        def load(name: str):
            return importlib.import_module(f"{package}.{name}")

        models, files = load("models"), load("types")
        create_project, upload_dataset, list_items, create_job, read_job = (
            load(f"api.{module}")
            for module in (
                "projects.create_project",
                "projects.upload_dataset",
                "items.list_items",
                "jobs.create_job",
                "jobs.read_job",
            )
        )
        take_next, label_item = load("api.queue.take_next"), load("api.items.label_item")
        export_project = load("api.export.export_project")
        api = load("client").AuthenticatedClient(
            base_url=base, token=token, raise_on_unexpected_status=True
        )

        body = models.ProjectCreate(name="reviews", labels=LABELS)
        project = create_project.sync(client=api, body=body)
        assert isinstance(project, models.ProjectOut), project
        taken = create_project.sync(client=api, body=body)
        assert isinstance(taken, models.ErrorOut) and "already exists" in taken.detail

        for kind, data in demo_datasets(SIZES).items():
            form = models.DatasetUpload(
                file=files.File(payload=io.BytesIO(data), file_name=f"{kind}.csv"),
                kind=models.DatasetKind(kind),
            )
            datasets = upload_dataset.sync(project.id, client=api, body=form)
            assert [(d.kind, d.row_count) for d in datasets] == [
                (models.DatasetKind(kind), SIZES[kind])
            ], datasets

        job = create_job.sync(project.id, client=api, body=models.JobCreate())
        assert job.kind == models.JobKind.TRAIN_SCORE, job
        finished = (models.JobState.SUCCEEDED, models.JobState.FAILED)
        wait_until(
            lambda: read_job.sync(job.id, client=api).state in finished,
            JOB_TIMEOUT_S,
            interval=0.5,
            what="training",
        )
        done = read_job.sync(job.id, client=api)
        assert done.state == models.JobState.SUCCEEDED, _worker_log(tmp_path)

        items, cursor, pages = [], None, 0
        while pages == 0 or cursor is not None:
            page = list_items.sync(
                project.id,
                client=api,
                order=models.ListItemsOrder.ID,
                limit=PAGE,
                cursor=cursor if cursor is not None else files.UNSET,
            )
            items += page.items
            cursor, pages = page.next_cursor, pages + 1
        assert pages == -(-ITEMS // PAGE) and [i.id for i in items] == sorted({i.id for i in items})
        assert len(items) == ITEMS
        silver = [i for i in items if i.dataset_kind == models.DatasetKind.SILVER]
        assert len(silver) == SIZES["silver"]
        assert all(isinstance(i.scores.suspicion, float) for i in silver)
        assert {i.estimator for i in silver} == {models.Estimator.NOISE_CHECK}
        assert {i.status for i in silver} == {models.ItemStatus.PENDING}

        held = take_next.sync(project.id, client=api)
        assert isinstance(held, models.QueueItemOut) and held.leased_until.tzinfo is not None
        new = _other(held.current_label)
        decision = models.LabelDecision(label=new, idempotency_key=uuid.uuid4().hex)
        decided = label_item.sync(held.id, client=api, body=decision)
        assert (decided.gold_label, decided.status) == (new, models.ItemStatus.REVIEWED)
        assert [(e.old_label, e.new_label) for e in decided.history[-1:]] == [
            (held.current_label, new)
        ]

        exported = export_project.sync(project.id, client=api, format_=models.ExportFormat.CSV)
        rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(exported))}
        assert len(rows) == ITEMS and rows[held.id]["final_label"] == new
        lines = export_project.sync(project.id, client=api, format_=models.ExportFormat.JSONL)
        assert [json.loads(line)["id"] for line in lines.splitlines()] == sorted(rows)


def test_the_shipped_client_uploads_trains_pages_labels_and_exports(
    live_env,  # noqa: F811
    tmp_path,
):
    from app.client import ApiError, Client, JobFailed

    data = demo_datasets(SIZES)
    paths = {kind: tmp_path / f"{kind}.csv" for kind in data}
    for kind, path in paths.items():
        path.write_bytes(data[kind])
    with running_server(tmp_path, "--worker") as base:
        admin_headers("ada")
        with Client(base, username="ada", password=ADMIN_PASSWORD) as api:
            project = api.create_project("reviews", LABELS)
            pid = project["id"]
            with pytest.raises(ApiError) as taken:
                api.create_project("reviews", LABELS)
            assert taken.value.status == 409 and "already exists" in taken.value.detail
            with pytest.raises(ApiError) as missing:
                api.project(pid + 1)
            assert missing.value.status == 404 and "not found" in missing.value.detail

            for kind, path in paths.items():  # streamed from disk
                assert [d["row_count"] for d in api.upload(pid, path, kind=kind)] == [SIZES[kind]]
            assert [d["kind"] for d in api.datasets(pid)] == list(SIZES)
            with pytest.raises(ApiError) as again:
                api.upload(pid, data["silver"])
            assert again.value.status == 422 and "mode=replace" in again.value.detail["message"]
            assert api.upload(pid, data["silver"], mode="skip") == []  # every id known: no dataset

            seen: list[dict] = []
            job = api.wait(
                api.train(pid), timeout=JOB_TIMEOUT_S, interval=0.2, progress=seen.append
            )
            assert job["state"] == "succeeded", _worker_log(tmp_path)
            assert seen[-1] == job and all(0 <= s["progress"] <= 1 for s in seen)
            assert [v["version"] for v in api.model_versions(pid)] == [1]
            assert api.update_project(pid, preselect="suggestion")["preselect"] == "suggestion"

            items = list(api.items(pid, order="id", page_size=PAGE))
            assert len(items) == ITEMS and [i["id"] for i in items] == sorted(
                i["id"] for i in items
            )
            ranked = list(api.items(pid, page_size=PAGE, dataset_kind="silver"))  # a filter
            assert [i["suspicion_rank"] for i in ranked] == list(range(1, SIZES["silver"] + 1))

            skipped = api.next_item(pid)
            first = api.skip(skipped["id"], key="client-test-skip")
            assert api.skip(skipped["id"], key="client-test-skip") == {**first, "duplicate": True}
            held = api.next_item(pid)  # the skipped item went to the back of my queue
            assert held["id"] != skipped["id"]
            new = _other(held["current_label"])
            decided = api.label(held["id"], new)
            assert decided["status"] == "reviewed" and decided["gold_label"] == new
            assert api.undo(pid)["status"] == "pending"
            assert api.next_item(pid)["id"] == held["id"]  # the undone item comes back to me
            assert api.label(held["id"], new)["current_label"] == new
            approved = api.review(held["id"])  # an admin approves the decision
            assert (
                approved["current_label"] == new and approved["history"][-1]["source"] == "review"
            )

            like = api.similar(ranked[0]["id"], limit=3)
            assert 1 <= len(like) <= 3 and all(s["shared_evidence"] >= 1 for s in like)
            bulk_ids = [s["item"]["id"] for s in like]
            before = {i: (api.item(i)["current_label"], api.item(i)["status"]) for i in bulk_ids}
            preview = api.preview_relabel(pid, bulk_ids, "fresh")
            assert [r["item_id"] for r in preview["items"]] == sorted(bulk_ids)
            change = api.relabel(pid, bulk_ids, "fresh", preview=preview, note="all praise")
            assert change["changed"] == len(bulk_ids)
            assert {api.item(i)["current_label"] for i in bulk_ids} == {"fresh"}
            assert api.undo_relabel(pid, change["group_id"])["undone_at"] is not None
            after = {i: (api.item(i)["current_label"], api.item(i)["status"]) for i in bulk_ids}
            assert after == before
            with pytest.raises(ApiError) as stale:  # the preview no longer holds for a change
                api.label(bulk_ids[0], _other(before[bulk_ids[0]][0]))
                api.relabel(pid, bulk_ids, "rotten", preview=preview)
            assert stale.value.status == 409 and "changed since the preview" in stale.value.detail

            exported = api.export(pid, tmp_path / "reviews.csv")
            rows = {int(r["id"]): r for r in csv.DictReader(exported.open(newline=""))}
            assert len(rows) == ITEMS and rows[held["id"]]["final_label"] == new
            jsonl = api.export(pid, tmp_path / "silver.jsonl", format="jsonl", kinds=["silver"])
            lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
            assert len(lines) == SIZES["silver"] and {r["dataset"] for r in lines} == {"silver"}

            one_label = api.create_project("one label", LABELS)["id"]
            api.upload(one_label, to_csv([{"id": "1", "text": "good", "label": "fresh"}]))
            with pytest.raises(JobFailed) as failed:
                api.wait(api.train(one_label), timeout=JOB_TIMEOUT_S, interval=0.2)
            assert "at least two labels" in failed.value.job["error"]

        with Client(base, token=api.token) as same_user:  # a token given instead of a login
            assert [p["id"] for p in same_user.projects()] == [pid, one_label]


def test_the_shipped_client_names_the_running_job_and_stops_waiting_at_its_timeout(
    backend, tmp_path
):
    """No worker: the job stays queued, so a second start conflicts and waiting times out."""
    from app.client import ApiError, Client, JobTimeout

    with running_server(tmp_path, "--no-worker") as base:
        token = admin_headers()["Authorization"].removeprefix("Bearer ")
        with Client(base, token=token) as api:
            pid = api.create_project("reviews", LABELS)["id"]
            api.upload(pid, demo_datasets({"silver": 4})["silver"])
            job = api.train(pid)
            with pytest.raises(ApiError) as running:
                api.train(pid)
            assert running.value.status == 409 and running.value.detail["job_id"] == job["id"]
            polls: list[dict] = []
            with pytest.raises(JobTimeout) as waited:
                api.wait(job, timeout=0.5, interval=0.1, progress=polls.append)
            assert waited.value.job["state"] == "queued" and polls[-1] == waited.value.job
