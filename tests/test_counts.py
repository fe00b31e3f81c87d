"""Counts that add up: a label, its undo, a relabel with the silver label and another label
leave one correction and two decisions everywhere (project page, model versions API and table,
dashboard annotator table, retraining trigger), on SQLite and PostgreSQL and in Chromium."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from tests.browser import login, running_server
from tests.seeding import add_members, hand_over, page_login, seed_model_version
from tests.support import assay_env, demo_rows, to_csv

RETRAIN_EVERY = 2  # the walk below leaves one correction: an undone one would make it two


def _flip(label: str, labels: list[str]) -> str:
    return labels[1 - labels.index(label)]


def _walk(labels: list[str], a: dict, b: dict) -> list[tuple[str, dict, str | None, int, int]]:
    """(action, item, label, corrections, ann's decisions) after each step."""
    return [
        ("label", a, _flip(a["silver_label"], labels), 1, 1),
        ("undo", a, None, 0, 0),
        ("label", a, a["silver_label"], 0, 1),  # the silver label again: a confirmation
        ("label", b, _flip(b["silver_label"], labels), 1, 2),
    ]


def _act(api, project_id: int, action: str, item: dict, label: str | None) -> None:
    key = uuid.uuid4().hex
    if action == "undo":
        response = api.post(f"/api/v1/projects/{project_id}/undo", json={"idempotency_key": key})
    else:
        hand_over(item["id"], "ann")  # as the queue would: ann decides what ann holds
        response = api.post(
            f"/api/v1/items/{item['id']}/label", json={"label": label, "idempotency_key": key}
        )
    assert response.status_code == 200, response.text


def _setup(api, project_id: int) -> list[dict]:
    """Six silver items, model version 1 (before any decision), retraining every 2."""
    upload = api.post(
        f"/api/v1/projects/{project_id}/datasets",
        files={"file": ("silver.csv", to_csv(demo_rows(6)), "text/csv")},
        data={"kind": "silver"},
    )
    assert upload.status_code == 201, upload.text
    items = api.get(f"/api/v1/projects/{project_id}/items?order=id&limit=50").json()["items"]
    seed_model_version(project_id, [i["id"] for i in items], ["fresh", "rotten"])
    patch = api.patch(f"/api/v1/projects/{project_id}", json={"retrain_every": RETRAIN_EVERY})
    assert patch.status_code == 200, patch.text
    return items


def _train_version_2(project_id: int) -> None:
    """Version 2 over every label event so far, compared with version 1 as the worker does."""
    from sqlalchemy import func, select

    from app.core.db import session_scope
    from app.models import LabelEvent, ModelVersion
    from app.services.model_versions import record_comparison

    with session_scope() as session:
        watermark = session.scalar(select(func.max(LabelEvent.id)))
    seed_model_version(project_id, [], ["fresh", "rotten"], watermark=watermark)
    with session_scope() as session:
        version = session.scalar(
            select(ModelVersion).where(
                ModelVersion.project_id == project_id, ModelVersion.version == 2
            )
        )
        record_comparison(session, version)


def _jobs(project_id: int) -> int:
    from sqlalchemy import func, select

    from app.core.db import session_scope
    from app.models import Job

    with session_scope() as session:
        return session.scalar(
            select(func.count()).where(Job.project_id == project_id, Job.kind == "train_score")
        )


def _pending_corrections(html: str) -> int:
    match = re.search(r"(\d+) corrections? since the latest version", html)
    assert match, "no corrections line on the project page"
    return int(match[1])


def _ann_decisions(html: str) -> int:
    match = re.search(r'data-username="ann">.*?class="decisions">(\d+)<', html, re.S)
    return int(match[1]) if match else 0


class _Api:
    """The TestClient with ann's or the admin's token, like the httpx client of the browser test."""

    def __init__(self, client: TestClient, headers: dict[str, str]):
        self.client, self.headers = client, headers

    def __getattr__(self, method: str):
        return lambda url, **kw: getattr(self.client, method)(url, headers=self.headers, **kw)


def test_label_undo_relabel_leaves_every_count_right(
    client, admin_headers, annotator_headers, project
):
    pid, seeded_jobs = project["id"], None
    admin, ann = _Api(client, admin_headers), _Api(client, annotator_headers)
    items = _setup(admin, pid)
    seeded_jobs = _jobs(pid)  # the seeded version's own (succeeded) job
    pages = TestClient(client.app)
    page_login(pages, "ada")
    for action, item, label, corrections, decisions in _walk(project["labels"], *items[:2]):
        _act(ann, pid, action, item, label)
        step = f"after {action} {label or ''} on item {item['id']}"
        assert _pending_corrections(pages.get(f"/projects/{pid}").text) == corrections, step
        stats = pages.get(f"/projects/{pid}/dashboard/stats", headers={"HX-Request": "true"})
        assert stats.status_code == 200, stats.text
        assert _ann_decisions(stats.text) == decisions, step
        assert _jobs(pid) == seeded_jobs, f"{step}: {corrections} < {RETRAIN_EVERY} corrections"
    _train_version_2(pid)
    versions = admin.get(f"/api/v1/projects/{pid}/model-versions").json()
    assert [(v["version"], v["corrections"]) for v in versions] == [(2, 1), (1, None)]
    html = pages.get(f"/projects/{pid}").text
    assert _pending_corrections(html) == 0
    row = re.search(r'data-version="2">.*?class="corrections">(\d+)<', html, re.S)
    assert row and row[1] == "1", "the versions table says what the API says"


@pytest.mark.browser
def test_the_pages_show_the_same_counts_in_chromium(tmp_path, browser):
    """The project page and the dashboard, read in Chromium after each step of the walk."""
    from app.core.auth import create_user, issue_token
    from app.core.db import migrate, session_scope
    from app.models import Role

    with assay_env(tmp_path):
        migrate()
        with session_scope() as session:
            tokens = {
                name: issue_token(session, create_user(session, name, "count-it-right", role), "t")
                for name, role in (("ada", Role.admin), ("ann", Role.annotator))
            }
        with running_server(tmp_path) as base:
            admin, ann = (
                httpx.Client(base_url=base, headers={"Authorization": f"Bearer {t}"}, timeout=30)
                for t in (tokens["ada"], tokens["ann"])
            )
            pid = admin.post(
                "/api/v1/projects", json={"name": "counts", "labels": ["fresh", "rotten"]}
            ).json()["id"]
            add_members(pid, "ann")
            items = _setup(admin, pid)
            page = browser.new_page()
            login(page, base, "ada", "count-it-right")
            for action, item, label, corrections, decisions in _walk(
                ["fresh", "rotten"], *items[:2]
            ):
                _act(ann, pid, action, item, label)
                page.goto(f"{base}/projects/{pid}")
                policy = page.locator("#model-versions .policy")
                expect(policy).to_contain_text(f"{corrections} correction")
                page.goto(f"{base}/projects/{pid}/dashboard")
                cell = page.locator('#annotators tr[data-username="ann"] .decisions')
                if decisions:
                    expect(cell).to_have_text(str(decisions))
                else:
                    expect(cell).to_have_count(0)
            _train_version_2(pid)
            page.goto(f"{base}/projects/{pid}")
            expect(page.locator('tr.version[data-version="2"] .corrections')).to_have_text("1")
            page.close()
            admin.close()
            ann.close()
