"""Uploaded text, labels and names with script payloads render escaped on every page."""

from __future__ import annotations

import pytest

from tests.seeding import page_login
from tests.support import to_csv

SCRIPT = "<script>alert('xss-text')</script>"
IMG = "\"><img src=x onerror=alert('xss-img')>"
LABEL_SCRIPT = "<script>alert('xss-label')</script>"
LABEL_IMG = "'><img src=x onerror=alert('xss-label-img')>"
NAME = "<script>alert('xss-name')</script>"
RAW = ("<script>alert(", "<img src=x")  # neither may reach the HTML from the data


@pytest.fixture
def pages(client, admin_headers) -> dict[str, str]:
    """The HTML of each page that shows the hostile project, its items or its labels."""
    project = client.post(
        "/api/v1/projects",
        headers=admin_headers,
        json={"name": NAME, "labels": [LABEL_SCRIPT, LABEL_IMG]},
    ).json()
    rows = [
        {
            "id": f"r{i}",
            "text": f"{SCRIPT} {IMG} row {i}",
            "label": (LABEL_SCRIPT, LABEL_IMG)[i % 2],
        }
        for i in range(6)
    ]
    uploaded = client.post(
        f"/api/v1/projects/{project['id']}/datasets",
        headers=admin_headers,
        files={"file": ("hostile.csv", to_csv(rows), "text/csv")},
    )
    assert uploaded.status_code == 201, uploaded.text
    items = client.get(f"/api/v1/projects/{project['id']}/items?order=id", headers=admin_headers)
    item_id = items.json()["items"][0]["id"]
    page_login(client, "ada")
    urls = {
        "home": "/",
        "project": f"/projects/{project['id']}",
        "queue": f"/projects/{project['id']}/queue",
        "item": f"/items/{item_id}",
        "dashboard": f"/projects/{project['id']}/dashboard",
        "review": f"/projects/{project['id']}/review",
    }
    found = {}
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, (url, response.text[:300])
        found[name] = response.text
    return found


def test_payloads_render_escaped(pages):
    for name, html in pages.items():
        for raw in RAW:
            assert raw not in html, f"{name} page renders {raw!r} from the data unescaped"
    assert "&lt;script&gt;alert(&#39;xss-name&#39;)" in pages["home"]
    for name in ("project", "queue", "item"):
        assert "&lt;script&gt;alert(&#39;xss-label&#39;)" in pages[name], name
    for name in ("queue", "item"):
        assert "&lt;script&gt;alert(&#39;xss-text&#39;)" in pages[name], name
        assert "&lt;img src=x onerror=alert(&#39;xss-img&#39;)&gt;" in pages[name], name


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_no_dialog_fires_in_chromium(pages, browser):
    """Chromium parses each page as served; a payload that ran would open an alert."""
    dialogs: list[str] = []
    page = browser.new_page()
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.route("**/*", lambda route: route.fulfill(status=404, body=""))  # x fails: onerror
    for html in pages.values():
        page.set_content(html, wait_until="load")
        page.wait_for_timeout(100)
    page.close()
    assert dialogs == []
