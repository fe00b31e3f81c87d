"""The span editor (static/span_editor.js) on the real queue and item pages in headless
Chromium: a sequence-tagging project made through the API from a CoNLL upload, its sentences
edited with the keyboard and the mouse, and the stored annotation read back through the API as
the exact canonical string (no model: the queue is upload order, nothing is outlined as
suspicious, and the first span is selected first)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import login, running_server
from tests.seeding import add_members
from tests.support import assay_env

pytestmark = pytest.mark.browser
PASSWORD = "spans-all-day-long"
CONLL = Path(__file__).parent / "data" / "news_en_silver_ner_40.conll"
TYPES = ["PERSON", "ORG", "GPE", "DATE", "CARDINAL", "MONEY", "NORP", "ORDINAL", "TIME"]
# the file's first sentence and its spans as uploaded
FIRST = "0:1:GPE 4:6:PERSON 8:9:DATE 18:19:PERSON 25:27:PERSON 35:36:ORG"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """`assay serve` with a sequence-tagging project of the 40 silver news sentences, an
    annotator and an admin (with an API token)."""
    from app.core.auth import create_user, issue_token
    from app.core.db import migrate, session_scope
    from app.models import Role

    data_dir = tmp_path_factory.mktemp("span-editor")
    with assay_env(data_dir):
        migrate()
        with session_scope() as session:
            create_user(session, "nora", PASSWORD, Role.annotator)
            token = issue_token(session, create_user(session, "ada", PASSWORD, Role.admin), "t")
        with (
            running_server(data_dir) as base,
            httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as api,
        ):
            project = api.post(
                "/api/v1/projects",
                json={"name": "news", "labels": TYPES, "task_kind": "sequence_tagging"},
            )
            assert project.status_code == 201, project.text
            project_id = project.json()["id"]
            response = api.post(
                f"/api/v1/projects/{project_id}/datasets",
                files={"file": (CONLL.name, CONLL.read_bytes())},
                data={"kind": "silver"},
            )
            assert response.status_code == 201, response.text
            add_members(project_id, "nora")
            yield {"base": base, "api": api, "project": project_id}


def annotation(page) -> str:
    return page.locator('#decision input[name="label"]').get_attribute("value")


def token(page, i: int):
    return page.locator(f'#decision .sentence .tok[data-i="{i}"]')


def test_keyboard_and_mouse_edits_are_stored_as_the_canonical_annotation(site, browser):
    context = browser.new_context()
    page = context.new_page()
    login(page, site["base"], "nora", PASSWORD)
    page.goto(f"{site['base']}/projects/{site['project']}/queue")
    item_id = page.locator("article.item").get_attribute("data-item-id")
    assert annotation(page) == FIRST
    selected = page.locator("#decision .ent.selected")
    expect(selected).to_contain_text("Michigan")  # no focus: the first span is selected

    page.keyboard.press("2")  # retype Michigan as ORG
    expect(selected).to_contain_text("ORG")
    expect(page.locator('#decision .chip[data-type="ORG"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    page.keyboard.press("ArrowRight")  # Betsy DeVos
    expect(selected).to_contain_text("Betsy DeVos")
    page.keyboard.press("0")  # removed
    for _ in range(2):  # today, then Trump
        page.keyboard.press("ArrowRight")
    expect(selected).to_contain_text("Trump")
    page.keyboard.press("Shift+ArrowRight")  # Trump 's
    expect(selected).to_contain_text("Trump 's")
    page.keyboard.press("Shift+ArrowLeft")  # Trump
    page.keyboard.press("Alt+ArrowLeft")  # President Trump
    expect(selected).to_contain_text("President Trump")
    edited = "0:1:ORG 8:9:DATE 17:19:PERSON 25:27:PERSON 35:36:ORG"
    assert annotation(page) == edited
    expect(page.locator("#decision [data-summary]")).to_have_text(
        "Michigan: ORG; today: DATE; President Trump: PERSON; Mike Pence: PERSON; Senate: ORG."
    )

    page.keyboard.press("n")  # keys typed into the note edit nothing
    page.keyboard.type("0 a 2")
    page.keyboard.press("Escape")
    assert annotation(page) == edited

    page.reload()  # the draft survives a reload
    expect(page.locator("#decision .ent.selected")).to_contain_text("Michigan")
    assert annotation(page) == edited

    token(page, 23).click()  # Vice .. President (shift+click), then A: the first type
    token(page, 24).click(modifiers=["Shift"])
    expect(page.locator("#decision .tok.in-range")).to_have_count(2)
    page.keyboard.press("a")
    expect(page.locator("#decision .ent.selected")).to_contain_text("Vice President")
    token(page, 28).hover()  # drag over "a tie", then the CARDINAL chip
    page.mouse.down()
    token(page, 29).hover()
    page.mouse.up()
    page.locator('#decision .chip[data-type="CARDINAL"]').click()
    token(page, 35).click()  # click Senate, then the remove button
    expect(page.locator("#decision .ent.selected")).to_contain_text("Senate")
    page.locator("#decision [data-remove]").click()
    final = "0:1:ORG 8:9:DATE 17:19:PERSON 23:25:PERSON 25:27:PERSON 28:30:CARDINAL"
    assert annotation(page) == final

    page.keyboard.press("Enter")
    expect(page.locator("article.item")).not_to_have_attribute("data-item-id", item_id)
    detail = site["api"].get(f"/api/v1/items/{item_id}").json()
    assert detail["current_label"] == final
    assert detail["history"][-1]["new_label"] == final
    context.close()


def test_item_page_shows_the_spans_and_relabels_with_the_editor(site, browser):
    api = site["api"]
    items = api.get(f"/api/v1/projects/{site['project']}/items?order=id&limit=3").json()["items"]
    item = items[2]
    context = browser.new_context()
    page = context.new_page()
    login(page, site["base"], "ada", PASSWORD)
    page.goto(f"{site['base']}/items/{item['id']}")
    view = page.locator("blockquote.sentence .ent")
    expect(view).to_have_count(len(item["current_label"].split()))
    expect(page.locator("#relabel .ent.selected")).to_have_count(1)
    first = item["current_label"].split()[0]
    page.keyboard.press("0")  # the first span goes
    page.locator("#relabel button[type=submit]").click()
    expect(page.locator("#relabel-saved")).to_be_visible()
    rest = " ".join(item["current_label"].split()[1:]) or "O"
    assert api.get(f"/api/v1/items/{item['id']}").json()["current_label"] == rest
    assert first not in rest.split()
    context.close()


def test_the_suspicious_span_comes_selected_and_evidence_shows_its_segment(site, browser):
    """A model version whose most suspicious span in the first sentence is one the labels lack
    ("education activist", tokens 2-4): the queue outlines it and selects it as tokens, so one
    number key makes it an entity; an evidence row draws its segment in its own sentence."""
    from sqlalchemy import func, select, update

    from app.core.db import session_scope
    from app.models import Influencer, ModelVersion, Prediction
    from tests.seeding import seed_model_version

    api = site["api"]
    project = api.post(
        "/api/v1/projects",
        json={"name": "focus", "labels": TYPES, "task_kind": "sequence_tagging"},
    ).json()
    response = api.post(
        f"/api/v1/projects/{project['id']}/datasets",
        files={"file": (CONLL.name, CONLL.read_bytes())},
        data={"kind": "silver"},
    )
    assert response.status_code == 201, response.text
    add_members(project["id"], "nora")
    first, second = api.get(f"/api/v1/projects/{project['id']}/items?order=id&limit=2").json()[
        "items"
    ]
    predicted = "0:1:GPE 2:4:ORG 4:6:PERSON"
    seed_model_version(
        project["id"],
        [first["id"], second["id"]],
        [predicted, "O"],
        evidence=[(first["id"], second["id"], "supporter", 1, 0.5)],
    )
    with session_scope() as session:
        version = session.scalar(
            select(func.max(ModelVersion.id)).where(ModelVersion.project_id == project["id"])
        )
        session.execute(
            update(Prediction)
            .where(Prediction.model_version_id == version, Prediction.item_id == first["id"])
            .values(focus="2:4:ORG")
        )
        session.execute(
            update(Influencer)
            .where(Influencer.model_version_id == version)
            .values(train_label="1:2:ORG", target_label="2:4:ORG")
        )

    context = browser.new_context()
    page = context.new_page()
    login(page, site["base"], "nora", PASSWORD)
    page.goto(f"{site['base']}/projects/{project['id']}/queue")
    expect(page.locator("article.item")).to_have_attribute("data-item-id", str(first["id"]))
    expect(page.locator("#decision .tok.focus")).to_have_text(["education", "activist"])
    expect(page.locator("#decision .tok.in-range")).to_have_text(["education", "activist"])
    expect(page.locator("#decision .ent.selected")).to_have_count(0)
    expect(page.locator(".span-reference .predicted .ent")).to_have_count(3)
    evidence = page.locator("#evidence .evidence-item .sentence-view").first
    expect(evidence.locator(".ent")).to_have_text("Senate ORG")
    expect(evidence.locator(".tok.focus")).to_have_text("Senate")

    page.keyboard.press("2")
    expect(page.locator("#decision .ent.selected")).to_have_text("education activist ORG")
    assert annotation(page) == FIRST.replace("0:1:GPE ", "0:1:GPE 2:4:ORG ")
    context.close()
