"""The data browser's pages through their forms (TestClient, SQLite and PostgreSQL): filters
render the same items as the API, a bulk preview writes nothing, the confirm applies it, a
double submission changes nothing more, the undo restores; the item page relabels. The same
flows in Chromium are in tests/test_browser_data.py."""

from __future__ import annotations

import re
import uuid
from html import unescape as html_unescape

import pytest

from tests.seeding import page_login, seed_model_version
from tests.support import database_rows, upload_demo_project

LABELS = ["fresh", "rotten"]


@pytest.fixture
def pages(client, admin_headers):
    """10 silver and 2 test items with a model; ada (admin) logged in through the form."""
    project_id = upload_demo_project(client, admin_headers, "Pages", {"silver": 10, "test": 2})
    items = client.get(
        f"/api/v1/projects/{project_id}/items", headers=admin_headers, params={"order": "id"}
    ).json()["items"]
    seed_model_version(project_id, [i["id"] for i in items[:10]], LABELS)
    csrf = page_login(client, "ada")
    return project_id, items, csrf


def _row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'class="item-row" data-item-id="(\d+)"', html)]


def test_filters_match_the_api(client, admin_headers, pages):
    project_id, items, _ = pages
    for params in (
        {},
        {"dataset_kind": "test"},
        {"silver_label": "rotten", "order": "id"},
        {"rank_min": "3", "rank_max": "5"},
        {"text": items[4]["external_id"]},
        {"status": "", "changed": "", "text": ""},
    ):
        page = client.get(f"/projects/{project_id}/items", params=params)
        assert page.status_code == 200, page.text
        api_params = {k: v for k, v in params.items() if v} | {"limit": 500}
        api = client.get(
            f"/api/v1/projects/{project_id}/items", headers=admin_headers, params=api_params
        ).json()["items"]
        assert _row_ids(page.text) == [i["id"] for i in api], params
        assert f"<strong>{len(api)}</strong> item" in page.text
    bad = client.get(f"/projects/{project_id}/items", params={"status": "lost"})
    assert bad.status_code == 422


def _form_fields(html: str, form_id: str) -> dict[str, str | list[str]]:
    """The hidden fields of a form on the page, as a browser would send them."""
    form = re.search(rf'<form[^>]*id="{form_id}".*?</form>', html, re.S)[0]
    fields: dict[str, str | list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form):
        value = html_unescape(value)
        if name in fields:
            previous = fields[name]
            fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            fields[name] = value
    return fields


def test_bulk_preview_confirm_undo(client, admin_headers, pages):
    project_id, items, csrf = pages
    chosen = [str(items[i]["id"]) for i in (1, 2, 3)]
    before = {i["id"]: (i["current_label"], i["status"]) for i in items}
    rows = database_rows()
    preview = client.post(
        f"/projects/{project_id}/bulk/preview",
        data={"csrf_token": csrf, "item_id": chosen, "label": "fresh", "back": "/evil"},
    )
    assert preview.status_code == 200, preview.text
    assert database_rows() == rows, "the preview wrote something"
    assert preview.text.count('class="preview-row') == 3
    assert 'href="/evil"' not in preview.text, "back must stay inside the browser"
    fields = _form_fields(preview.text, "confirm")
    done = client.post(f"/projects/{project_id}/bulk", data=fields)
    assert done.status_code == 200 and 'id="bulk-result"' in done.text, done.text
    after = client.get(
        f"/api/v1/projects/{project_id}/items", headers=admin_headers, params={"order": "id"}
    ).json()["items"]
    assert {
        i["id"]: (i["current_label"], i["status"]) for i in after if str(i["id"]) in chosen
    } == {int(c): ("fresh", "reviewed") for c in chosen}
    rows = database_rows()
    twice = client.post(f"/projects/{project_id}/bulk", data=fields)
    assert twice.status_code == 200 and database_rows() == rows, "a double submission wrote"
    undo = _form_fields(done.text, "undo-group")
    action = re.search(r'action="(/projects/\d+/bulk/\d+/undo)"', done.text)[1]
    undone = client.post(action, data=undo)
    assert "Undone" in undone.text, undone.text
    restored = client.get(
        f"/api/v1/projects/{project_id}/items", headers=admin_headers, params={"order": "id"}
    ).json()["items"]
    assert {i["id"]: (i["current_label"], i["status"]) for i in restored} == before
    # a stale confirm (the item changed since its preview) is refused, nothing written
    stale_fields = _form_fields(_preview(client, project_id, csrf, chosen[:1], "rotten"), "confirm")
    meanwhile = _form_fields(_preview(client, project_id, csrf, chosen[:1], "fresh"), "confirm")
    assert 'id="bulk-result"' in client.post(f"/projects/{project_id}/bulk", data=meanwhile).text
    rows = database_rows()
    stale = client.post(f"/projects/{project_id}/bulk", data=stale_fields)
    assert "changed since the preview" in stale.text
    assert database_rows() == rows
    for garbage in ("not json", "[1, 2]", '["1", "fresh", "pending"]'):
        tampered = stale_fields | {"expected": garbage, "idempotency_key": uuid.uuid4().hex}
        refused = client.post(f"/projects/{project_id}/bulk", data=tampered)
        assert "the preview form was changed" in refused.text, garbage
    assert database_rows() == rows


def _preview(client, project_id: int, csrf: str, item_ids: list[str], label: str) -> str:
    data = {"csrf_token": csrf, "item_id": item_ids, "label": label}
    response = client.post(f"/projects/{project_id}/bulk/preview", data=data)
    assert response.status_code == 200, response.text
    return response.text


def test_item_page_relabel(client, admin_headers, pages):
    _, items, csrf = pages
    item = items[6]
    page = client.get(f"/items/{item['id']}")
    assert 'id="relabel"' in page.text
    key = _form_fields(page.text, "relabel")
    label = LABELS[1 - LABELS.index(item["current_label"])]
    saved = client.post(
        f"/items/{item['id']}/label", data=dict(key) | {"label": label, "note": "sarcasm"}
    )
    assert saved.status_code == 200 and 'id="relabel-saved"' in saved.text, saved.text
    detail = client.get(f"/api/v1/items/{item['id']}", headers=admin_headers).json()
    assert (detail["current_label"], detail["status"]) == (label, "reviewed")
    assert detail["history"][-1]["new_label"] == label
    assert "sarcasm" in saved.text  # the note is in the history table
    # a label outside the project's set: the page again, with the reason, nothing written
    rows = database_rows()
    refused = client.post(
        f"/items/{item['id']}/label",
        data={"csrf_token": csrf, "idempotency_key": uuid.uuid4().hex, "label": "mouldy"},
    )
    assert refused.status_code == 200 and "unknown label" in refused.text
    assert database_rows() == rows
    # a trusted item offers no form
    test_item = next(i for i in items if i["dataset_kind"] == "test")
    assert 'id="relabel"' not in client.get(f"/items/{test_item['id']}").text
