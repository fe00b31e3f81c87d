"""The named-entity workflow in headless Chromium, end to end against `assay serve` and its
embedded worker: an admin creates a sequence-tagging project on the page, uploads 60 silver
news sentences (with "Trump" typed ORG everywhere, a systematic error) and 20 gold dev
sentences through the upload form, trains from the page; an annotator fixes a type, a
boundary and a missed entity in the queue with the keyboard; the admin fixes the Trump group
on the span-groups page; the CoNLL export holds every fix and the JSONL export says who made
each and how (annotator or bulk).

With NER_QUEUE_SCREENSHOT=PATH set, the queue's first sentence (its suspicious span outlined,
its evidence beside it) is also saved there at 1280 px wide: that is how docs/ner_queue.png
is made (`NER_QUEUE_SCREENSHOT=docs/ner_queue.png pytest -q tests/test_ner_browser_flow.py`).
"""

from __future__ import annotations

import io
import json
import os

import pytest
from playwright.sync_api import expect

from app.kinds.sequence_tagging.annotation import encode
from app.kinds.sequence_tagging.formats import Span, read_conll
from tests.browser import desktop_page, login, project_trained_on_page, served_team
from tests.test_ner_project import DATA, _blocks, _relabel_everywhere, _types

pytestmark = pytest.mark.browser
PASSWORD = "entities-by-keyboard"
TRAIN_TIMEOUT_MS = 300_000


def _spans(value: str) -> list[Span]:
    if value == "O":
        return []
    return [Span(int(s), int(e), t) for s, e, t in (p.split(":") for p in value.split(" "))]


def _sentences(text: str) -> list:
    return list(read_conll(io.StringIO(text), "x.conll", max_tokens=1000).sentences)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A served, empty instance with an admin and an annotator; the CoNLL files to upload."""
    data_dir = tmp_path_factory.mktemp("ner-flow")
    blocks = _blocks(DATA)
    silver = _relabel_everywhere("".join(blocks[:60]), "Trump", "PERSON", "ORG")
    dev = "".join(blocks[60:])
    (data_dir / "silver.conll").write_text(silver, encoding="utf-8")
    (data_dir / "dev.conll").write_text(dev, encoding="utf-8")
    with served_team(data_dir, PASSWORD) as base:
        yield {"base": base, "dir": data_dir, "silver": silver, "dev": dev}


def _annotation(page) -> str:
    return page.locator('#decision input[name="label"]').get_attribute("value")


def _select_first_span(page, n_spans: int) -> None:
    """Left arrow steps to the previous span and stops at the first."""
    for _ in range(n_spans + 1):
        page.keyboard.press("ArrowLeft")


def _next_item(page, item_id: str) -> str:
    page.keyboard.press("Enter")
    article = page.locator("article.item")
    expect(article).not_to_have_attribute("data-item-id", item_id)
    return article.get_attribute("data-item-id")


def _with_spans(page, item_id: str) -> tuple[str, list[Span]]:
    """The queue's current item if it has spans, else the next ones confirmed as they are
    until one has (every sentence of the file has some, this guards the test's premise)."""
    while not _spans(_annotation(page)):
        item_id = _next_item(page, item_id)
    return item_id, _spans(_annotation(page))


def test_ner_upload_train_fix_by_keyboard_group_fix_and_export(site, browser):
    base = site["base"]
    types = _types(site["silver"] + site["dev"])
    admin = desktop_page(browser)
    login(admin, base, "ada", PASSWORD)
    pid = project_trained_on_page(
        admin,
        base,
        name="News entities",
        kind="sequence_tagging",
        labels=", ".join(types),
        uploads=[
            (site["dir"] / "silver.conll", "silver"),
            (site["dir"] / "dev.conll", "gold_dev"),
        ],
        member="nora",
        timeout_ms=TRAIN_TIMEOUT_MS,
    )

    nora = desktop_page(browser)
    login(nora, base, "nora", PASSWORD)
    nora.goto(f"{base}/projects/{pid}/queue")
    expect(nora.locator("#decision .tok.focus").first).to_be_visible()
    expect(nora.locator("#evidence .evidence-item").first).to_be_visible()
    if os.environ.get("NER_QUEUE_SCREENSHOT"):
        nora.screenshot(path=os.environ["NER_QUEUE_SCREENSHOT"], full_page=True)
    item_id = nora.locator("article.item").get_attribute("data-item-id")
    fixes: dict[int, str] = {}

    # a type: the first span retyped with its number key
    item_id, spans = _with_spans(nora, item_id)
    _select_first_span(nora, len(spans))
    first = spans[0]
    new_type = next(t for t in types if t != first.label)
    nora.keyboard.press(str(types.index(new_type) + 1))
    fixes[int(item_id)] = encode([Span(first.start, first.end, new_type), *spans[1:]])
    assert _annotation(nora) == fixes[int(item_id)]
    item_id = _next_item(nora, item_id)

    # a boundary: the first span's start one token earlier (Alt+Left), or its end one token
    # earlier (Shift+Left) when it starts the sentence and is longer than one token
    item_id, spans = _with_spans(nora, item_id)
    while spans[0].start == 0 and spans[0].end - spans[0].start == 1:
        item_id = _next_item(nora, item_id)
        item_id, spans = _with_spans(nora, item_id)
    _select_first_span(nora, len(spans))
    first = spans[0]
    if first.start > 0:
        nora.keyboard.press("Alt+ArrowLeft")
        moved = Span(first.start - 1, first.end, first.label)
    else:
        nora.keyboard.press("Shift+ArrowLeft")
        moved = Span(first.start, first.end - 1, first.label)
    fixes[int(item_id)] = encode([moved, *spans[1:]])
    assert _annotation(nora) == fixes[int(item_id)]
    item_id = _next_item(nora, item_id)

    # a missed entity: two free tokens selected (click, Shift+click), typed with a number key
    tokens = nora.locator("#decision .sentence .tok")
    covered = {i for s in _spans(_annotation(nora)) for i in range(s.start, s.end)}
    start = next(i for i in range(tokens.count() - 1) if not {i, i + 1} & covered)
    nora.locator(f'#decision .sentence .tok[data-i="{start}"]').click()
    nora.locator(f'#decision .sentence .tok[data-i="{start + 1}"]').click(modifiers=["Shift"])
    nora.keyboard.press(str(types.index("ORG") + 1))
    added = [*_spans(_annotation(nora))]
    fixes[int(item_id)] = encode(added)
    assert Span(start, start + 2, "ORG") in added
    _next_item(nora, item_id)

    # the systematic group: Trump typed ORG, suggested PERSON from the gold dev set
    admin.goto(f"{base}/projects/{pid}/span-groups")
    group = admin.locator("tr.span-group").filter(has_text="Trump").filter(has_text="ORG")
    expect(group.locator("select[name=label]")).to_have_value("PERSON")
    group.get_by_role("button", name="Preview").click()
    expect(admin.locator("#preview")).to_contain_text("Trump")
    admin.locator("#confirm button[type=submit]").click()
    expect(admin.locator("#bulk-result")).to_contain_text("Changed")

    conll = admin.request.get(f"{base}/projects/{pid}/export?format=conll")
    jsonl = admin.request.get(f"{base}/projects/{pid}/export?format=jsonl")
    assert conll.ok and jsonl.ok
    records = [json.loads(line) for line in jsonl.text().splitlines()]
    exported = _sentences(conll.text())
    assert len(exported) == len(records) == 80
    by_id = {r["id"]: (r, sentence) for r, sentence in zip(records, exported, strict=True)}
    for fixed_id, value in fixes.items():
        record, sentence = by_id[fixed_id]
        expected = _spans(value)
        trump = [  # the group fix may have retyped a Trump in the same sentence afterwards
            Span(s.start, s.end, "PERSON")
            if s.label == "ORG" and tuple(sentence.tokens[s.start : s.end]) == ("Trump",)
            else s
            for s in expected
        ]
        assert list(sentence.spans) in (expected, trump), (fixed_id, sentence.spans)
        assert record["decided_by"] in ("nora", "ada") and record["changed"] is True
        assert "nora" in [v["annotator"] for v in record["votes"]]
    trump_sentences = 0
    for record, sentence in by_id.values():
        if record["dataset"] != "silver":
            continue  # the dev set is as uploaded (spaCy's own silver, an ORG Trump included)
        surfaces = {(tuple(sentence.tokens[s.start : s.end]), s.label) for s in sentence.spans}
        assert (("Trump",), "ORG") not in surfaces, record
        if (("Trump",), "PERSON") in surfaces:
            trump_sentences += 1
            if record["id"] not in fixes:
                assert record["source"] == "bulk" and record["decided_by"] == "ada"
                assert record["changed"] is True
    assert trump_sentences >= 10
    untouched = [r for r, _ in by_id.values() if r["dataset"] == "silver" and not r["changed"]]
    assert untouched and all(r["source"] == "import" for r in untouched)
