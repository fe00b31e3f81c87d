"""A sequence-tagging project end to end through the API and a real worker: CoNLL silver and a
gold dev set in, segment influence scores out, one sentence per queue item with its most
suspicious span as the focus, and span annotations checked and made canonical."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient

from app.kinds.sequence_tagging.formats import read_conll
from tests.support import admin_headers, upload, wait_until
from tests.test_worker import JOB_TIMEOUT_S, live_env  # noqa: F401 (the fixture)

DATA = Path(__file__).parent / "data" / "news_en_silver_ner_80.conll"


def _blocks(path: Path) -> list[str]:
    return [b + "\n\n" for b in path.read_text(encoding="utf-8").strip().split("\n\n")]


def _types(text: str) -> list[str]:
    parsed = read_conll(io.StringIO(text), "x.conll", max_tokens=1000)
    return sorted({s.label for sentence in parsed.sentences for s in sentence.spans})


def test_ner_project_trains_and_serves_spans(live_env, tmp_path):  # noqa: F811
    from app.main import create_app
    from app.worker_process import start_worker, stop_worker

    blocks = _blocks(DATA)
    train, dev = "".join(blocks[:60]), "".join(blocks[60:])
    with TestClient(create_app()) as client:
        headers = admin_headers()
        project = client.post(
            "/api/v1/projects",
            headers=headers,
            json={"name": "news", "labels": _types(train + dev), "task_kind": "sequence_tagging"},
        ).json()
        pid = project["id"]
        assert project["task_kind"] == "sequence_tagging"
        unknown = "Paris B-CITY\n\n"
        refused = upload(client, headers, pid, unknown.encode(), "bad.conll")
        assert refused.status_code == 422
        assert "bad.conll" in str(refused.json()) and "CITY" in str(refused.json())
        assert upload(client, headers, pid, train.encode(), "silver.conll").status_code == 201
        assert (
            upload(client, headers, pid, dev.encode(), "dev.conll", kind="gold_dev").status_code
            == 201
        )
        worker = start_worker(tmp_path / "worker.log")
        try:
            job = client.post(f"/api/v1/projects/{pid}/jobs", headers=headers, json={}).json()

            def done() -> bool:
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
                state = client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json()
                return state["state"] in ("succeeded", "failed")

            wait_until(done, JOB_TIMEOUT_S, interval=0.5, what="the tagging job")
        finally:
            stop_worker(worker)
        final = client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json()
        assert final["state"] == "succeeded", final
        items = client.get(
            f"/api/v1/projects/{pid}/items", headers=headers, params={"limit": 100}
        ).json()["items"]
        ranked = sorted(
            (i for i in items if i["dataset_kind"] == "silver"), key=lambda i: i["suspicion_rank"]
        )
        assert [i["suspicion_rank"] for i in ranked] == list(range(1, 61))
        top = client.post(f"/api/v1/projects/{pid}/queue/next", headers=headers).json()
        assert top["id"] == ranked[0]["id"]
        tokens = top["text"].split(" ")
        # the model's annotation and the suggestion are valid span sets of this sentence
        for value in (top["predicted_label"], top["suggested_label"], top["current_label"]):
            assert value == "O" or all(
                0 <= int(p.split(":")[0]) < int(p.split(":")[1]) <= len(tokens)
                for p in value.split(" ")
            ), value
        # a vote in non-canonical order is stored canonically; a span past the end is refused
        bad = client.post(
            f"/api/v1/items/{top['id']}/label",
            headers=headers,
            json={
                "label": f"0:{len(tokens) + 1}:{_types(train)[0]}",
                "idempotency_key": "key-bad-0001",
            },
        )
        assert bad.status_code == 422 and "ends after the sentence" in bad.json()["detail"]
        t0, t1 = _types(train)[:2]
        sent = client.post(
            f"/api/v1/items/{top['id']}/label",
            headers=headers,
            json={"label": f"1:2:{t1} 0:1:{t0}", "idempotency_key": "key-good-0001"},
        )
        assert sent.status_code == 200, sent.text
        item = client.get(f"/api/v1/items/{top['id']}", headers=headers).json()
        assert item["current_label"] == f"0:1:{t0} 1:2:{t1}"
