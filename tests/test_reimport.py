"""A file whose ids are already in the project, on SQLite and PostgreSQL: refused with the first
repeated id and its line (nothing stored) unless mode=replace (the item updated, a label event
``import`` in its history) or mode=skip (only the new ids added); the CLI's --replace/--skip."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import assay_env, demo_rows, to_csv

BATCH = "2"  # small batches: the repeated ids are found in a later batch, not only the first


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch):
    from app.core.config import get_settings

    monkeypatch.setenv("ASSAY_IMPORT_BATCH_ROWS", BATCH)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _upload(client, headers, pid, rows, name="more.csv", **fields):
    return client.post(
        f"/api/v1/projects/{pid}/datasets",
        headers=headers,
        files={"file": (name, to_csv(rows), "text/csv")},
        data={"kind": "silver", **fields},
    )


def _items(client, headers, pid) -> dict[str, dict]:
    page = client.get(f"/api/v1/projects/{pid}/items?order=id&limit=100", headers=headers)
    return {i["external_id"]: i for i in page.json()["items"]}


def _second_file() -> list[dict]:
    """Two new ids, then id 3 again with another label and text (line 4 of the CSV)."""
    rows = demo_rows(2, offset=10)
    again = dict(demo_rows(4)[3])
    again["label"] = "rotten" if again["label"] == "fresh" else "fresh"
    again["text"] = "replaced text"
    return [*rows, again]


@pytest.fixture
def first(client, admin_headers, project) -> dict[str, dict]:
    assert _upload(client, admin_headers, project["id"], demo_rows(4), "silver.csv").status_code
    return _items(client, admin_headers, project["id"])


def test_a_repeated_id_is_refused_and_nothing_is_stored(client, admin_headers, project, first):
    pid = project["id"]
    again = _second_file()[-1]
    response = _upload(client, admin_headers, pid, _second_file())
    assert response.status_code == 422, response.text
    assert response.json()["line"] == 4 and response.json()["field"] == "id"
    assert response.json()["message"].startswith(
        f"id '{again['id']}' (line 4) is already in the project (dataset 'silver.csv'); "
        "choose mode=replace or mode=skip"
    )
    assert _items(client, admin_headers, pid) == first, "the new ids were not stored either"
    datasets = client.get(f"/api/v1/projects/{pid}/datasets", headers=admin_headers).json()
    assert [d["source_filename"] for d in datasets] == ["silver.csv"]
    bad = _upload(client, admin_headers, pid, _second_file(), mode="merge")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "mode"]


def test_replace_updates_the_item_with_a_history_event(client, admin_headers, project, first):
    pid = project["id"]
    again = _second_file()[-1]
    response = _upload(client, admin_headers, pid, _second_file(), mode="replace")
    assert response.status_code == 201, response.text
    assert [d["row_count"] for d in response.json()] == [2]
    items = _items(client, admin_headers, pid)
    assert len(items) == 6
    item = items[again["id"]]
    assert (item["text"], item["silver_label"], item["current_label"]) == (
        "replaced text",
        again["label"],
        again["label"],
    )
    history = client.get(f"/api/v1/items/{item['id']}", headers=admin_headers).json()["history"]
    event = history[-1]
    assert (event["source"], event["old_label"], event["new_label"]) == (
        "import",
        first[again["id"]]["current_label"],
        again["label"],
    )


def test_skip_keeps_the_existing_item_and_adds_the_new(client, admin_headers, project, first):
    pid = project["id"]
    response = _upload(client, admin_headers, pid, _second_file(), mode="skip")
    assert response.status_code == 201, response.text
    items = _items(client, admin_headers, pid)
    assert len(items) == 6
    again = _second_file()[-1]
    assert items[again["id"]] == first[again["id"]]


def test_files_without_ids_never_collide(client, admin_headers, project):
    """Rows without an id are numbered within their file: a second such file is no re-import."""
    rows = [{"text": r["text"], "label": r["label"]} for r in demo_rows(3)]
    for name in ("a.csv", "b.csv"):
        response = _upload(client, admin_headers, project["id"], rows, name)
        assert response.status_code == 201, response.text
    url = f"/api/v1/projects/{project['id']}/items?order=id&limit=100"
    assert len(client.get(url, headers=admin_headers).json()["items"]) == 6


def test_the_cli_refuses_then_replaces(tmp_path):
    from app.core.db import migrate, session_scope
    from app.services.projects import create_project

    data_dir = tmp_path / "data"
    with assay_env(data_dir):
        migrate()
        with session_scope() as session:
            create_project(session, "cli", ["fresh", "rotten"])
    env = {**os.environ, "ASSAY_DATA_DIR": str(data_dir)}
    source, second = tmp_path / "silver.csv", tmp_path / "more.csv"
    source.write_bytes(to_csv(demo_rows(4)))
    second.write_bytes(to_csv(_second_file()))

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "app.cli", "import", "cli", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    assert run(str(source)).returncode == 0
    refused = run(str(second))
    assert refused.returncode == 1 and "is already in the project" in refused.stderr
    assert "--replace or --skip" in refused.stderr
    replaced = run(str(second), "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert "silver: 2" in replaced.stdout
    skipped = run(str(second), "--skip")
    assert skipped.returncode == 0, "nothing new: nothing added"
    assert "(no new items: every id was already in the project)" in skipped.stdout
    again = run(str(second), "--replace")
    assert "no new items: every id was already in the project; their texts and labels" in (
        again.stdout
    )


def test_the_upload_form_asks_then_skips(client, admin_headers, project, first):
    """The project page offers the choice; without one the page says what to choose."""
    from tests.seeding import page_login

    csrf = page_login(client, "ada")
    url = f"/projects/{project['id']}/datasets"
    assert '<select name="mode">' in client.get(f"/projects/{project['id']}").text

    def post(**fields):
        files = {"file": ("more.csv", to_csv(_second_file()), "text/csv")}
        data = {"csrf_token": csrf, "kind": "silver", **fields}
        return client.post(url, data=data, files=files, follow_redirects=False)

    refused = post()
    assert refused.status_code == 422
    assert "choose mode=replace or mode=skip" in refused.text
    assert post(mode="skip").status_code == 303
    assert len(_items(client, admin_headers, project["id"])) == 6
