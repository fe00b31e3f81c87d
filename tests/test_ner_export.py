"""A sequence-tagging project's export on SQLite and PostgreSQL: the CoNLL reads back to the
uploaded sentences with one annotator's change, the JSONL and the provenance CSV say who
changed which sentence, and the item list's filters apply."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path

import pytest

from app.kinds.sequence_tagging.annotation import encode
from app.kinds.sequence_tagging.formats import Sentence, Span, read_conll, read_jsonl
from tests.seeding import add_members, hand_over
from tests.support import upload

DATA = Path(__file__).parent / "data" / "news_en_silver_ner_40.conll"
N_SILVER = 35  # the file's first 35 sentences are the silver set, the other 5 gold dev


def _conll(text: str) -> list[Sentence]:
    return list(read_conll(io.StringIO(text), "export.conll", max_tokens=1000).sentences)


def _jsonl(text: str) -> list[Sentence]:
    parsed = read_jsonl(io.StringIO(text), "export.jsonl", max_tokens=1000, max_depth=10)
    return list(parsed.sentences)


def _bare(sentence: Sentence) -> tuple:
    return sentence.tokens, sentence.spans


@pytest.fixture
def tagged(client, admin_headers, annotator_headers):
    """The 40 sentences uploaded (35 silver, 5 gold dev); ann changes one silver sentence's
    spans and confirms another's as they are."""
    text = DATA.read_text(encoding="utf-8")
    sentences = _conll(text)
    types = sorted({s.label for sentence in sentences for s in sentence.spans})
    project = client.post(
        "/api/v1/projects",
        headers=admin_headers,
        json={"name": "news", "labels": types, "task_kind": "sequence_tagging"},
    ).json()
    pid = project["id"]
    add_members(pid, "ann")
    blocks = [block + "\n\n" for block in text.strip().split("\n\n")]
    silver, dev = "".join(blocks[:N_SILVER]), "".join(blocks[N_SILVER:])
    assert upload(client, admin_headers, pid, silver.encode(), "news.conll").status_code == 201
    response = upload(client, admin_headers, pid, dev.encode(), "dev.conll", kind="gold_dev")
    assert response.status_code == 201
    items = client.get(
        f"/api/v1/projects/{pid}/items", headers=admin_headers, params={"order": "id", "limit": 100}
    ).json()["items"]
    assert len(items) == len(sentences) == 40

    changed_at = next(i for i, s in enumerate(sentences[:N_SILVER]) if len(s.spans) >= 2)
    first = sentences[changed_at].spans[0]
    other = next(t for t in types if t != first.label)
    # a type changed, a boundary moved (the span grows by a token when it can), the rest dropped
    n_tokens = len(sentences[changed_at].tokens)
    end = first.end + 1 if first.end < sentences[changed_at].spans[1].start else first.end
    new_spans = (Span(first.start, end, other),)
    assert end <= n_tokens and new_spans != sentences[changed_at].spans
    confirmed_at = changed_at + 1
    for at, spans in ((changed_at, new_spans), (confirmed_at, sentences[confirmed_at].spans)):
        assert hand_over(items[at]["id"], "ann")
        decision = client.post(
            f"/api/v1/items/{items[at]['id']}/label",
            headers=annotator_headers,
            json={"label": encode(spans), "idempotency_key": uuid.uuid4().hex},
        )
        assert decision.status_code == 200, decision.text
    return {
        "pid": pid,
        "items": items,
        "sentences": sentences,
        "changed_at": changed_at,
        "confirmed_at": confirmed_at,
        "new_spans": new_spans,
    }


def _export(client, headers, pid, **params) -> str:
    response = client.get(f"/api/v1/projects/{pid}/export", headers=headers, params=params)
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    return response.text


def _expected(tagged) -> list[tuple]:
    """The uploaded sentences, with ann's change."""
    expected = [_bare(s) for s in tagged["sentences"]]
    at = tagged["changed_at"]
    expected[at] = (expected[at][0], tagged["new_spans"])
    return expected


def test_conll_export_reads_back_to_the_upload_with_the_change(client, admin_headers, tagged):
    pid = tagged["pid"]
    text = _export(client, admin_headers, pid, format="conll")
    assert [_bare(s) for s in _conll(text)] == _expected(tagged)
    assert _export(client, admin_headers, pid) == text  # CoNLL is the kind's default format
    assert "\n\n" in text and "#" not in {line[:1] for line in text.splitlines()}


def test_jsonl_export_carries_spans_and_provenance(client, admin_headers, tagged):
    pid, items = tagged["pid"], tagged["items"]
    text = _export(client, admin_headers, pid, format="jsonl")
    sentences = _jsonl(text)
    assert [_bare(s) for s in sentences] == _expected(tagged)
    assert [s.external_id for s in sentences] == [str(i["id"]) for i in items]

    records = [json.loads(line) for line in text.splitlines()]
    changed_at, confirmed_at = tagged["changed_at"], tagged["confirmed_at"]
    for at, record in enumerate(records):
        uploaded = tagged["sentences"][at]
        silver = [{"start": s.start, "end": s.end, "label": s.label} for s in uploaded.spans]
        assert record["id"] == items[at]["id"]
        assert record["external_id"] == str(at + 1 if at < N_SILVER else at + 1 - N_SILVER)
        if at >= N_SILVER:
            assert record["dataset"] == "gold_dev" and record["silver"] is None
            assert record["source"] == "import" and record["decided_by"] is None
            assert record["changed"] is False and record["status"] == "reviewed"
            continue
        assert record["dataset"] == "silver" and record["silver"] == silver
        if at in (changed_at, confirmed_at):
            assert record["status"] == "reviewed" and record["source"] == "annotator"
            assert record["decided_by"] == "ann" and record["decided_at"]
            assert record["changed"] is (at == changed_at)
            assert [v["annotator"] for v in record["votes"]] == ["ann"]
            assert record["votes"][0]["spans"] == record["spans"]
        else:
            assert record["status"] == "pending" and record["source"] == "import"
            assert record["decided_by"] is None and record["changed"] is False
            assert record["spans"] == silver and record["votes"] == []
    assert records[changed_at]["spans"] != records[changed_at]["silver"]


def test_provenance_csv_follows_the_conll_order(client, admin_headers, tagged):
    pid, items = tagged["pid"], tagged["items"]
    rows = list(csv.DictReader(io.StringIO(_export(client, admin_headers, pid, format="csv"))))
    assert [int(r["id"]) for r in rows] == [i["id"] for i in items]
    at = tagged["changed_at"]
    row = rows[at]
    assert row["final"] == encode(tagged["new_spans"])
    assert row["silver"] == encode(tagged["sentences"][at].spans)
    assert (row["source"], row["decided_by"], row["changed"]) == ("annotator", "ann", "true")
    assert [r["changed"] for r in rows].count("true") == 1
    untouched = rows[at + 2]
    assert (untouched["source"], untouched["decided_by"]) == ("import", "")


def test_export_keeps_what_the_filters_keep(client, admin_headers, tagged):
    text = _export(client, admin_headers, tagged["pid"], format="conll", changed="true")
    at = tagged["changed_at"]
    assert [_bare(s) for s in _conll(text)] == [_expected(tagged)[at]]
    dev = _export(client, admin_headers, tagged["pid"], format="jsonl", kind="gold_dev")
    assert [_bare(s) for s in _jsonl(dev)] == _expected(tagged)[N_SILVER:]


def test_a_format_the_kind_has_not_is_refused(client, admin_headers, project, tagged):
    for pid, fmt in ((tagged["pid"], "xml"), (project["id"], "conll")):
        response = client.get(
            f"/api/v1/projects/{pid}/export", headers=admin_headers, params={"format": fmt}
        )
        assert response.status_code == 422, response.text
    assert "csv, jsonl" in response.json()["detail"]
