"""A ranking project end to end through the API and a real worker (SQLite and PostgreSQL):
svmlight judgments and gold dev queries in, one suspicion rank per judgment out, the queue's
view of a judgment with its query's other documents, a regrade checked and made canonical,
and the svmlight and provenance exports."""

from __future__ import annotations

import csv
import io

import numpy as np
from fastapi.testclient import TestClient
from sklearn.datasets import load_svmlight_file

from tests.seeding import page_login
from tests.support import ADMIN_PASSWORD, admin_headers, train_and_wait, upload
from tests.test_score_ranking_cli import queries
from tests.test_worker import JOB_TIMEOUT_S, live_env  # noqa: F401 (the fixture)

GRADES = ["0", "1", "2", "3", "4"]


def test_ranking_project_trains_serves_and_exports(live_env, tmp_path):  # noqa: F811
    from app.main import create_app

    train = "".join(queries("train", 3))
    dev = "".join(queries("test", 2))
    with TestClient(create_app()) as client:
        headers = admin_headers()
        project = client.post(
            "/api/v1/projects",
            headers=headers,
            json={"name": "mslr", "labels": GRADES, "task_kind": "ranking"},
        ).json()
        pid = project["id"]
        assert project["task_kind"] == "ranking"
        refused = upload(client, headers, pid, b"1 qid:1 1:1\n7 qid:1 1:2\n", "bad.svmlight")
        assert refused.status_code == 422
        error = refused.json()
        assert (error["file"], error["line"], error["field"]) == ("bad.svmlight", 2, "grade")
        assert upload(client, headers, pid, train.encode(), "train.svmlight").status_code == 201
        assert (
            upload(client, headers, pid, dev.encode(), "dev.svmlight", kind="gold_dev").status_code
            == 201
        )
        final = train_and_wait(client, headers, pid, tmp_path / "worker.log", JOB_TIMEOUT_S)
        assert final["state"] == "succeeded", final
        items = client.get(
            f"/api/v1/projects/{pid}/items", headers=headers, params={"limit": 500}
        ).json()["items"]
        silver = [i for i in items if i["dataset_kind"] == "silver"]
        n = train.count("\n")
        assert len(silver) == n
        assert sorted(i["suspicion_rank"] for i in silver) == list(range(1, n + 1))

        top = client.post(f"/api/v1/projects/{pid}/queue/next", headers=headers).json()
        assert top["id"] == min(silver, key=lambda i: i["suspicion_rank"])["id"]
        _queue_page_shows_the_query(client, pid, top["id"])

        bad = client.post(
            f"/api/v1/items/{top['id']}/label",
            headers=headers,
            json={"label": "7", "idempotency_key": "key-bad-0001"},
        )
        assert bad.status_code == 422
        old = top["current_label"]
        new = "0" if old != "0" else "4"
        sent = client.post(
            f"/api/v1/items/{top['id']}/label",
            headers=headers,
            json={"label": f"{new}.0", "idempotency_key": "key-good-0001"},
        )
        assert sent.status_code == 200, sent.text
        item = client.get(f"/api/v1/items/{top['id']}", headers=headers).json()
        assert item["current_label"] == new
        _exports_carry_the_regrade(client, headers, pid, train, dev, top, new)


def _queue_page_shows_the_query(client, pid: int, item_id: int) -> None:
    """The queue names the judgment's query, the model's rank of it among the query's judged
    documents (as the stored model scores order them) and lists them, this one marked."""
    import re

    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import Item, Score

    with session_scope() as session:
        item = session.get(Item, item_id)
        group = (
            session.execute(
                select(Item.id).where(Item.project_id == pid, Item.group_key == item.group_key)
            )
            .scalars()
            .all()
        )
        scores = dict(
            session.execute(
                select(Score.item_id, Score.value).where(
                    Score.item_id.in_(group), Score.kind == "model_score"
                )
            ).all()
        )
        qid = item.group_key
    expected = 1 + sum(scores[j] > scores[item_id] for j in group)
    page_login(client, "ada", ADMIN_PASSWORD)
    page = client.get(f"/projects/{pid}/queue")
    assert page.status_code == 200
    text = re.sub(r"<[^>]+>", "", page.text)
    assert f"Query {qid}" in text
    assert re.search(rf"the model ranks it\s+{expected}(st|nd|rd|th)\s+of {len(group)}", text)
    assert page.text.count('class="current"') == 1
    assert page.text.count("<tr") == 1 + min(len(group), 12)  # ASSAY_RANKING_CONTEXT_ROWS
    assert 'data-keys="value"' in page.text
    item_page = client.get(f"/items/{item_id}")
    assert item_page.status_code == 200
    assert f"Query {qid}" in re.sub(r"<[^>]+>", "", item_page.text)
    assert item_page.text.count('class="current"') == 1
    assert "Regrade as" in item_page.text


def _exports_carry_the_regrade(client, headers, pid, train, dev, top, new) -> None:
    """svmlight: every judgment (training then dev) with its current grade and the uploaded
    features (scikit-learn reads both files); the provenance CSV says who regraded which."""
    got = client.get(
        f"/api/v1/projects/{pid}/export", headers=headers, params={"format": "svmlight"}
    )
    assert got.status_code == 200
    X, y, q = load_svmlight_file(io.BytesIO(got.content), query_id=True, n_features=136)
    X0, y0, q0 = load_svmlight_file(
        io.BytesIO((train + dev).encode()), query_id=True, n_features=136
    )
    np.testing.assert_array_equal(X.toarray(), X0.toarray())
    np.testing.assert_array_equal(q, q0)
    changed = np.flatnonzero(y != y0)
    assert len(changed) == 1 and y[changed[0]] == int(new)
    rows = list(
        csv.DictReader(
            io.StringIO(
                client.get(
                    f"/api/v1/projects/{pid}/export", headers=headers, params={"format": "csv"}
                ).text
            )
        )
    )
    assert len(rows) == len(y)
    regraded = [r for r in rows if r["changed"] == "true"]
    assert [r["id"] for r in regraded] == [str(top["id"])]
    assert regraded[0]["grade"] == new and regraded[0]["decided_by"] == "ada"
    assert rows[changed[0]]["id"] == str(top["id"])
