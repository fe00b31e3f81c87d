"""The queue's progress line on SQLite and PostgreSQL: decided today, left, and the estimate of
wrong labels left, checked against a hand computation on a small seeded project; undone
decisions count nowhere; the guidelines renderer leaves hostile Markdown inert; the project
settings behind the queue (pre-selection, guidelines) through the API."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.seeding import seed_model_version
from tests.support import demo_rows, to_csv

ITEMS = 200  # ranks 1..200: ten bands of 20


@pytest.fixture
def ranked(backend):
    """A 200-item silver project ranked in upload order by a model version, one annotator."""
    from app.core.auth import create_user
    from app.core.db import migrate, session_scope
    from app.models import DatasetKind, Item, Role
    from app.services.datasets import import_dataset
    from app.services.projects import create_project

    migrate()
    with session_scope() as s:
        project = create_project(s, "progress", ["fresh", "rotten"])
        import_dataset(s, project, to_csv(demo_rows(ITEMS)), "silver.csv", DatasetKind.silver)
        user = create_user(s, "ann", "long enough password", Role.annotator)
        s.flush()
        ids = list(
            s.scalars(select(Item.id).where(Item.project_id == project.id).order_by(Item.id))
        )
        project_id, user_id = project.id, user.id
    seed_model_version(project_id, ids, ["fresh", "rotten"])
    return {"project": project_id, "user": user_id, "ids": ids}


def label(db, project, user, item_id: int, correct: bool) -> None:
    """``user`` takes the item from the queue and confirms its silver label or corrects it."""
    from app.models import Item
    from app.services.decisions import decide
    from app.services.queue import claim

    item = db.get(Item, item_id)
    assert claim(db, item.id, user, 600)
    silver = item.silver_label
    new = ("rotten" if silver == "fresh" else "fresh") if correct else silver
    decide(db, project, item, user, new, uuid.uuid4().hex)
    db.commit()


def test_progress_matches_a_hand_computation_and_ignores_an_undone_decision(ranked):
    from app.core.db import new_session
    from app.models import Project, User, utcnow
    from app.services.decisions import undo
    from app.services.progress import queue_progress

    db = new_session()
    project, user = db.get(Project, ranked["project"]), db.get(User, ranked["user"])
    now = utcnow()
    before = queue_progress(db, project, user, now)
    assert (before.decided_today, before.left, before.wrong_left) == (0, ITEMS, None)

    ids = ranked["ids"]
    for rank in range(12):  # band 0 (ranks 1-20): 12 reviews, 9 of them corrections
        label(db, project, user, ids[rank], correct=rank < 9)
    for rank in (190, 191, 192):  # band 9 (ranks 191-200): 3 confirmations
        label(db, project, user, ids[rank], correct=False)

    # By hand: band 0 has 12 >= 10 reviews, its own rate 9/12 on its 8 pending items; every
    # other band has under 10, so the overall rate 9/15 applies: 17 pending in band 9 and
    # 8 x 20 in bands 1-8. 8 * 0.75 + (17 + 160) * 0.6 = 6 + 106.2 = 112.2.
    progress = queue_progress(db, project, user, now)
    assert (progress.decided_today, progress.left) == (15, ITEMS - 15)
    assert (progress.reviewed, progress.corrected) == (15, 9)
    assert progress.wrong_left == pytest.approx(112.2)

    undo(db, project, user, uuid.uuid4().hex, 600)  # the confirmation of rank 193
    db.commit()
    # 14 reviews, 9 corrections: band 0 unchanged (6), the rest 178 pending x 9/14.
    progress = queue_progress(db, project, user, now)
    assert (progress.decided_today, progress.left) == (14, ITEMS - 14)
    assert progress.wrong_left == pytest.approx(6 + 178 * 9 / 14)

    tomorrow = queue_progress(db, project, user, now + timedelta(days=1))
    assert tomorrow.decided_today == 0 and tomorrow.left == ITEMS - 14
    db.close()


def test_before_any_model_every_pending_item_takes_the_overall_rate(backend):
    """No ranks yet: one band of unranked items, the overall correction rate."""
    from app.services.progress import BandCounts, estimate_wrong_left

    bands = [BandCounts(None, pending=30, reviewed=20, corrected=5)]
    assert estimate_wrong_left(bands) == pytest.approx(30 * 5 / 20)
    assert estimate_wrong_left([BandCounts(None, pending=30)]) is None
    # too few reviews in all to set a rate: no estimate (not 6 of 6 corrected: all 30 wrong)
    assert estimate_wrong_left([BandCounts(None, pending=30, reviewed=6, corrected=6)]) is None


HOSTILE = """# Rules

<script>alert("x")</script>

[click me](javascript:alert(1)) and [also](JaVaScRiPt:alert(2)) and [enc](&#106;avascript:alert(3))

<img src="x" onerror="alert(4)">

![pic](x onerror=alert(5)) ![data](data:text/html;base64,PHNjcmlwdD4=)

[ok](https://example.org/rules) and <mailto:lead@example.org> and **bold**
"""


def test_hostile_guidelines_render_inert():
    import re

    from app.services.guidelines import render_guidelines

    html = str(render_guidelines(HOSTILE))
    assert "<script" not in html.lower()
    assert '<img src="x"' not in html
    assert not re.search(r"<[^>]*\son\w+\s*=", html, re.I), html  # no on* attribute
    hrefs = re.findall(r'(?:href|src)="([^"]*)"', html)
    assert all(not h.lower().startswith(("javascript:", "data:")) for h in hrefs), hrefs
    assert 'href="https://example.org/rules"' in html
    assert 'href="mailto:lead@example.org"' in html
    assert "<strong>bold</strong>" in html and "<h1>Rules</h1>" in html


def test_preselect_and_guidelines_through_the_api(client, admin_headers, project):
    url = f"/api/v1/projects/{project['id']}"
    assert client.get(url, headers=admin_headers).json()["preselect"] == "nothing"
    changed = client.patch(
        url, headers=admin_headers, json={"preselect": "suggestion", "guidelines": "# Be kind"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["preselect"] == "suggestion"
    assert changed.json()["guidelines"] == "# Be kind"
    assert client.patch(url, headers=admin_headers, json={"preselect": "gold"}).status_code == 422
    from app.core.config import get_settings

    too_long = "x" * (get_settings().max_guidelines_chars + 1)
    refused = client.patch(
        url, headers=admin_headers, json={"guidelines": too_long, "preselect": "silver"}
    )
    assert refused.status_code == 422 and "ASSAY_MAX_GUIDELINES_CHARS" in refused.text
    kept = client.get(url, headers=admin_headers).json()
    assert (kept["preselect"], kept["guidelines"]) == ("suggestion", "# Be kind")
