"""A sequence-tagging project end to end through the API and a real worker: CoNLL silver and a
gold dev set in, segment influence scores out, one sentence per queue item with its most
suspicious span as the focus, and span annotations checked and made canonical."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient

from app.kinds.sequence_tagging.formats import Sentence, Span, read_conll, write_conll
from tests.seeding import page_login
from tests.support import ADMIN_PASSWORD, admin_headers, train_and_wait, upload
from tests.test_worker import JOB_TIMEOUT_S, live_env  # noqa: F401 (the fixture)

DATA = Path(__file__).parent / "data" / "news_en_silver_ner_80.conll"


def _blocks(path: Path) -> list[str]:
    return [b + "\n\n" for b in path.read_text(encoding="utf-8").strip().split("\n\n")]


def _relabel_everywhere(text: str, surface: str, from_type: str, to_type: str) -> str:
    """Every span of ``surface`` typed ``from_type`` retyped: a systematic silver error."""
    parsed = read_conll(io.StringIO(text), "x.conll", max_tokens=1000)

    def fixed(sentence: Sentence) -> Sentence:
        spans = [
            Span(s.start, s.end, to_type)
            if " ".join(sentence.tokens[s.start : s.end]) == surface and s.label == from_type
            else s
            for s in sentence.spans
        ]
        return Sentence(sentence.tokens, tuple(spans), sentence.line)

    return write_conll(fixed(s) for s in parsed.sentences)


def _types(text: str) -> list[str]:
    parsed = read_conll(io.StringIO(text), "x.conll", max_tokens=1000)
    return sorted({s.label for sentence in parsed.sentences for s in sentence.spans})


def test_ner_project_trains_and_serves_spans(live_env, tmp_path):  # noqa: F811
    from app.main import create_app

    blocks = _blocks(DATA)
    # the silver calls Trump an ORG everywhere (spaCy itself does 3 times in 60 sentences);
    # the gold dev set keeps PERSON
    train = _relabel_everywhere("".join(blocks[:60]), "Trump", "PERSON", "ORG")
    dev = "".join(blocks[60:])
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
        final = train_and_wait(client, headers, pid, tmp_path / "worker.log", JOB_TIMEOUT_S)
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

        _fix_the_trump_group(client, pid)


def _fix_the_trump_group(client, pid: int) -> None:
    """The systematic error is offered as one group, suggested PERSON from the gold dev set;
    its preview changes nothing, its confirmation retypes every sentence's span with a bulk
    label event each, and its undo restores them all."""
    import re

    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import EventSource, Item, LabelEvent, Project
    from app.services.span_groups import span_groups

    with session_scope() as session:
        groups = span_groups(session, session.get(Project, pid))
        before = dict(session.execute(select(Item.id, Item.current_label)).all())
    trump = next(g for g in groups if (g.surface, g.label) == ("Trump", "ORG"))
    assert trump.suggested == "PERSON" and len(trump.members) == 11
    csrf = page_login(client, "ada", ADMIN_PASSWORD)
    page = client.get(f"/projects/{pid}/span-groups")
    assert page.status_code == 200 and "Trump" in page.text
    spans = [f"{i}:{s}:{e}" for i, s, e in trump.members]
    form = {"from_type": "ORG", "label": "PERSON", "surface": "Trump", "span": spans}
    preview = client.post(f"/projects/{pid}/span-groups/preview", data={**form, "csrf_token": csrf})
    assert preview.status_code == 200 and "Apply to" in preview.text, preview.text[-2000:]
    expected = [
        t.replace("&#34;", '"')
        for t in re.findall(r'name="expected" value="([^"]*)"', preview.text)
    ]
    key = re.search(r'name="idempotency_key" value="([^"]*)"', preview.text).group(1)
    with session_scope() as session:
        assert dict(session.execute(select(Item.id, Item.current_label)).all()) == before
    applied = client.post(
        f"/projects/{pid}/span-groups/apply",
        data={**form, "expected": expected, "idempotency_key": key, "csrf_token": csrf},
    )
    assert applied.status_code == 200 and "Undo this change" in applied.text, applied.text[-2000:]
    with session_scope() as session:
        after = dict(session.execute(select(Item.id, Item.current_label)).all())
        events = session.scalars(
            select(LabelEvent).where(LabelEvent.source == EventSource.bulk)
        ).all()
    changed = {i for i in before if before[i] != after[i]}
    assert changed == {i for i, _, _ in trump.members} == {e.item_id for e in events}
    for item_id, start, end in trump.members:
        assert f"{start}:{end}:PERSON" in after[item_id].split(" ")
        assert f"{start}:{end}:ORG" not in after[item_id].split(" ")
    group_id = events[0].group_id
    undone = client.post(
        f"/projects/{pid}/bulk/{group_id}/undo", data={"back": "", "csrf_token": csrf}
    )
    assert undone.status_code == 200 and "Undone" in undone.text
    with session_scope() as session:
        assert dict(session.execute(select(Item.id, Item.current_label)).all()) == before
