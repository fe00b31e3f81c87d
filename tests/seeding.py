"""Test data written through the real storage code: model versions and page logins."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"  # conftest's users (it passes the password policy)
NEW_PASSWORD = "amber kettle orbit 42"  # another that passes it, for password changes


def seed_model_version(
    project_id: int,
    ranked_item_ids: Sequence[int],
    labels: Sequence[str],
    metrics: dict[str, Any] | None = None,
    estimator: str = "exact_head",
    watermark: int = 0,
    evidence: Sequence[tuple[int, int, str, int, float]] = (),
):
    """A model version stored as a worker stores one: item i gets rank i+1 and score -i;
    ``watermark`` is the newest label event its training labels include; ``evidence``: rows
    of (target id, train id, role, rank, value)."""
    from app.core.db import session_scope
    from app.models import Job, JobState
    from app.services.results import ItemResults, PredictionRow, rank_queue, store_model_version

    with session_scope() as session:
        job = Job(project_id=project_id, kind="train_score", state=JobState.succeeded)
        session.add(job)
        session.flush()
        results = ItemResults(
            predictions=[
                PredictionRow(item_id, labels[rank % 2], 0.5 + rank / 1000, labels[0], rank + 1)
                for rank, item_id in enumerate(ranked_item_ids)
            ],
            scores=[
                (item_id, kind, value)
                for rank, item_id in enumerate(ranked_item_ids)
                for kind, value in (("suspicion", -float(rank)), ("self_influence", rank / 10))
            ],
            evidence=list(evidence),
        )
        version = store_model_version(
            session,
            project_id=project_id,
            job_id=job.id,
            artifact_path="unused.npz",
            estimator=estimator,
            metrics=metrics or {},
            label_event_watermark=watermark,
            results=results,
        )
        rank_queue(session, project_id, version.id)
        return version.version


def add_members(project_id: int, *usernames: str) -> None:
    """Make these users members of the project, as an admin does on the project page."""
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import Project, User
    from app.services.membership import add_member

    with session_scope() as session:
        project = session.get(Project, project_id)
        for user in session.scalars(select(User).where(User.username.in_(usernames))):
            add_member(session, project, user, added_by=None)


def silver_queue(client, admin: dict[str, str], name: str, *members: str) -> int:
    """A project of 12 silver demo rows uploaded through the API by ``admin`` (request
    headers), with ``members`` added: the shared queue that the queue and idempotency tests
    act on, set up in one place so both test the same thing. Returns its id."""
    from tests.support import demo_rows, to_csv, upload

    project = client.post(
        "/api/v1/projects", headers=admin, json={"name": name, "labels": ["fresh", "rotten"]}
    ).json()
    response = upload(client, admin, project["id"], to_csv(demo_rows(12)))
    assert response.status_code == 201, response.text
    add_members(project["id"], *members)
    return project["id"]


def take(client, headers: dict[str, str], project_id: int) -> dict:
    """The next item of the queue for the user of ``headers`` (POST queue/next), asserting the
    queue answered: the first step of every queue API test."""
    response = client.post(f"/api/v1/projects/{project_id}/queue/next", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def add_to_every_project(*usernames: str) -> None:
    """``add_members`` for every project there is (the fixtures' shared setup)."""
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import Project

    with session_scope() as session:
        project_ids = list(session.scalars(select(Project.id)))
    for project_id in project_ids:
        add_members(project_id, *usernames)


def hand_over(item_id: int, username: str, lease_ttl_s: int = 600) -> bool:
    """Lease the item to ``username`` as the queue does when it serves it (an annotator may
    decide only the item the queue handed them), for tests that label chosen items; False
    when the item is decided, another holds it, or there is no such user in this test."""
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import User
    from app.services.queue import claim

    with session_scope() as session:
        user = session.scalar(select(User).where(User.username == username))
        return user is not None and claim(session, item_id, user, lease_ttl_s)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'"X-CSRF-Token": "([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match[1]


def page_login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the form like a browser; returns the CSRF token for later forms."""
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


def stored_user(username: str):
    """The user row as stored now (None if there is none), read in a session of its own."""
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import User

    with session_scope() as session:
        return session.scalar(select(User).where(User.username == username))
