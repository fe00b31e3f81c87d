"""A survival project end to end through the API and a real worker, on SQLite and PostgreSQL:
gbsg2 records in (silver and gold dev), a Cox model's scores out, one record per queue item,
a follow-up corrected through the API (checked and made canonical) and exported with its
provenance. The stored model outputs are checked against independent computations: Breslow's
expected events sum to the number of events for any coefficients, and the stored C-index is
lifelines' on the stored risks."""

from __future__ import annotations

import csv
import io
from importlib import resources

from fastapi.testclient import TestClient
from lifelines.utils import concordance_index

from tests.seeding import page_login
from tests.support import ADMIN_PASSWORD, admin_headers, train_and_wait, upload
from tests.test_worker import JOB_TIMEOUT_S, live_env  # noqa: F401 (the fixture)

N_TRAIN, N_DEV = 100, 50


def gbsg2_csv(start: int, stop: int) -> bytes:
    """gbsg2's records ``start:stop`` (0-based) with their row number as ``id``."""
    text = resources.files("app.demo_data").joinpath("gbsg2.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["id", *rows[0]])
    writer.writeheader()
    writer.writerows({"id": f"r{i}", **rows[i]} for i in range(start, stop))
    return out.getvalue().encode()


def test_survival_project_trains_serves_corrects_and_exports(live_env, tmp_path):  # noqa: F811
    from app.main import create_app

    with TestClient(create_app()) as client:
        headers = admin_headers()
        three = client.post(
            "/api/v1/projects",
            headers=headers,
            json={"name": "x", "labels": ["time", "cens", "age"], "task_kind": "survival"},
        )
        assert three.status_code == 422 and "at most 2" in three.text
        project = client.post(
            "/api/v1/projects",
            headers=headers,
            json={"name": "gbsg2", "labels": ["time", "cens"], "task_kind": "survival"},
        ).json()
        pid = project["id"]
        bad = upload(client, headers, pid, b"time,cens,age\n10,1,50\n-3,0,40\n", "bad.csv")
        assert bad.status_code == 422
        assert (bad.json()["file"], bad.json()["line"], bad.json()["field"]) == (
            "bad.csv",
            3,
            "time",
        )
        assert "positive finite" in bad.json()["message"]
        assert upload(client, headers, pid, gbsg2_csv(0, N_TRAIN)).status_code == 201
        dev = upload(
            client, headers, pid, gbsg2_csv(N_TRAIN, N_TRAIN + N_DEV), "dev.csv", "gold_dev"
        )
        assert dev.status_code == 201, dev.text
        final = train_and_wait(client, headers, pid, tmp_path / "worker.log", JOB_TIMEOUT_S)
        assert final["state"] == "succeeded", final
        _check_the_model(pid)

        items = client.get(
            f"/api/v1/projects/{pid}/items", headers=headers, params={"limit": 200}
        ).json()["items"]
        ranked = sorted(
            (i for i in items if i["dataset_kind"] == "silver"), key=lambda i: i["suspicion_rank"]
        )
        assert [i["suspicion_rank"] for i in ranked] == list(range(1, N_TRAIN + 1))
        assert all(i["predicted_label"] == i["current_label"] for i in ranked)
        top = client.post(f"/api/v1/projects/{pid}/queue/next", headers=headers).json()
        assert top["id"] == ranked[0]["id"]
        for value, says in (("0 1", "positive"), ("12.5 yes", "event must be"), ("12", "<dur")):
            refused = client.post(
                f"/api/v1/items/{top['id']}/label",
                headers=headers,
                json={"label": value, "idempotency_key": f"key-bad-{value}"},
            )
            assert refused.status_code == 422 and says in refused.text, refused.text
        sent = client.post(
            f"/api/v1/items/{top['id']}/label",
            headers=headers,
            json={"label": "1234.50 1", "idempotency_key": "key-good-0001"},
        )
        assert sent.status_code == 200, sent.text
        item = client.get(f"/api/v1/items/{top['id']}", headers=headers).json()
        assert item["current_label"] == "1234.5 1"

        page_login(client, "ada", ADMIN_PASSWORD)
        page = client.get(f"/items/{top['id']}")  # the item page: covariates, editor, facts
        assert page.status_code == 200
        assert "event at 1234.5" in page.text and 'value="1234.5 0"' in page.text
        assert all(f"<th>{name}</th>" in page.text for name in ("horTh", "age", "estrec"))
        text = client.get(f"/api/v1/projects/{pid}/export", headers=headers).text
        _check_the_export(text, top, N_TRAIN + N_DEV)


def _check_the_model(pid: int) -> None:
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.kinds.survival.annotation import decode
    from app.models import Item, ModelVersion, Score

    with session_scope() as session:
        version = session.scalar(select(ModelVersion).where(ModelVersion.project_id == pid))
        metrics, estimator = version.metrics, version.estimator
        labels = dict(
            session.execute(
                select(Item.id, Item.current_label).where(
                    Item.project_id == pid, Item.dataset_kind == "silver"
                )
            ).all()
        )
        scores: dict[str, dict[int, float]] = {}
        for item_id, kind, value in session.execute(
            select(Score.item_id, Score.kind, Score.value).where(
                Score.model_version_id == version.id
            )
        ):
            scores.setdefault(kind, {})[item_id] = value
    assert estimator == "cox_dev"
    ids = sorted(labels)
    duration = [decode(labels[i])[0] for i in ids]
    event = [decode(labels[i])[1] for i in ids]
    expected = [scores["expected_events"][i] for i in ids]
    # Breslow: each event time's jump 1/S0 spread over its risk set sums back to one event
    assert abs(sum(expected) - sum(event)) < 1e-8
    for i, e, h in zip(ids, event, expected, strict=True):
        assert abs(scores["martingale"][i] - (e - h)) < 1e-12
    risk = [scores["risk"][i] for i in ids]
    assert (
        abs(metrics["c_index_train"] - concordance_index(duration, [-r for r in risk], event))
        < 1e-12
    )
    assert set(scores["dev_influence"]) == set(ids) and "c_index_dev" in metrics


def _check_the_export(text: str, corrected: dict, n: int) -> None:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == n
    header = list(rows[0])
    covariates = ["horTh", "age", "menostat", "tsize", "tgrade", "pnodes", "progrec", "estrec"]
    assert header[:3] == ["id", "external_id", "dataset"]
    assert header[3 : 3 + len(covariates) + 2] == [*covariates, "time", "cens"]
    by_id = {r["id"]: r for r in rows}
    mine = by_id[str(corrected["id"])]
    assert (mine["time"], mine["cens"]) == ("1234.5", "1")
    assert (mine["changed"], mine["decided_by"]) == ("true", "ada")
    assert mine["status"] == "reviewed" and mine["silver"] == corrected["silver_label"]
    original = csv.DictReader(io.StringIO(gbsg2_csv(0, N_TRAIN + N_DEV).decode()))
    for source in original:
        row = next(r for r in rows if r["external_id"] == source["id"])
        assert [row[c] for c in covariates] == [source[c] for c in covariates]
        if row is not mine:
            assert (float(row["time"]), row["cens"]) == (float(source["time"]), source["cens"])
            assert row["changed"] == "false" and row["source"] == "import"
