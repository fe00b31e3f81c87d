"""Body limits before storage, through the real app on SQLite and PostgreSQL: a huge upload from
anyone but an admin is refused without a byte reaching the disk (watched on a real uvicorn
server while it is sent), JSON bodies have their own cap, an admin's upload over the limit
stores nothing, and a validation error never echoes the whole input back."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser import running_server
from tests.seeding import PASSWORD, add_to_every_project, page_login
from tests.test_api import count_rows, upload

MIB = 1 << 20
BOUNDARY = "assaytestboundary"


def _huge_multipart(size: int, before: bytes = b"") -> Iterator[bytes]:
    """A multipart body with a ``size``-byte file, generated on the fly (never in memory)."""
    yield (
        before
        + (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
            "Content-Type: text/csv\r\n\r\ntext,label\r\n"
        ).encode()
    )
    chunk = b"a" * MIB
    for _ in range(size // MIB):
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


class _Watcher:
    """Polls directories for the largest file that appears in them, while a request runs."""

    def __init__(self, *directories: Path):
        self.directories, self.largest, self.stop = directories, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for directory in self.directories:
                for root, _, files in os.walk(directory):
                    for name in files:
                        try:
                            size = os.path.getsize(os.path.join(root, name))
                        except OSError:
                            continue
                        self.largest = max(self.largest, size)
            self.stop.wait(0.02)

    def __enter__(self) -> _Watcher:
        self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop.set()
        self.thread.join()


def _send(url: str, headers: dict[str, str], cookies: httpx.Cookies | None = None) -> int | None:
    """POST 250 MiB (chunked: no Content-Length to refuse by); the status, or None when the
    server closed the connection before answering."""
    headers = {**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    try:
        with httpx.Client(timeout=120, cookies=cookies) as http:
            return http.post(url, content=_huge_multipart(250 * MIB), headers=headers).status_code
    except httpx.TransportError:
        return None


def test_huge_upload_from_anyone_but_an_admin_never_reaches_the_disk(
    backend, tmp_path, monkeypatch
):
    """Anonymous and annotator, API and page: 401/403/login redirect; no file over 1 MiB in
    the temp directory (where python-multipart would spool) or the uploads spool meanwhile."""
    from app.core.config import get_settings
    from tests.conftest import _make_user

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # the server's tempfile.gettempdir()
    with running_server(get_settings().data_dir) as base:
        admin = {"Authorization": f"Bearer {_make_user('ada', 'admin')}"}
        annotator = {"Authorization": f"Bearer {_make_user('ann', 'annotator')}"}
        created = httpx.post(
            f"{base}/api/v1/projects", headers=admin, json={"name": "P", "labels": ["a", "b"]}
        )
        assert created.status_code == 201, created.text
        add_to_every_project("ann")
        api = f"{base}/api/v1/projects/{created.json()['id']}/datasets"
        page = f"{base}/projects/{created.json()['id']}/datasets"
        with httpx.Client(base_url=base) as browser:  # an annotator's page session
            page_login(browser, "ann", PASSWORD)  # type: ignore[arg-type]
            session = browser.cookies
        spool = get_settings().uploads_dir
        for url, headers, cookies, refused in (
            (api, {}, None, {401}),
            (api, annotator, None, {403}),
            (page, {}, None, {303}),
            (page, {}, session, {403}),
        ):
            with _Watcher(temp, spool) as watcher:
                status = _send(url, headers, cookies)
            assert status in refused | {None}, (url, status)
            assert watcher.largest <= MIB, (url, watcher.largest)
        assert not any(spool.glob("*")) if spool.exists() else True


def test_json_body_over_the_cap_is_413_with_a_short_body(client, admin_headers):
    from app.models import Project

    big = b'{"name": "' + b"x" * (20 * 1000 * 1000) + b'", "labels": ["a", "b"]}'
    headers = {**admin_headers, "Content-Type": "application/json"}
    response = client.post("/api/v1/projects", headers=headers, content=big)
    assert response.status_code == 413 and len(response.content) < 1024, response.text[:300]
    assert response.json() == {"detail": "request body is larger than 1 MiB"}

    def chunked() -> Iterator[bytes]:  # no Content-Length: the bytes are counted
        for start in range(0, len(big), MIB):
            yield big[start : start + MIB]

    response = client.post("/api/v1/projects", headers=headers, content=chunked())
    assert response.status_code == 413 and len(response.content) < 1024
    assert count_rows(Project) == 0


def test_validation_error_echoes_only_an_excerpt(client, admin_headers):
    from app.models import Project

    body = {"name": "y" * 900_000, "labels": ["a", "b"]}  # under the cap, over max_length
    response = client.post("/api/v1/projects", headers=admin_headers, json=body)
    assert response.status_code == 422 and len(response.content) < 1024, response.text[:300]
    assert response.json()["detail"][0]["loc"] == ["body", "name"]
    assert count_rows(Project) == 0


@pytest.mark.parametrize("size", [5000, 200_000], ids=["streamed-past-cap", "declared-length"])
def test_admin_upload_over_the_limit_is_413_and_stores_nothing(
    client, admin_headers, project, monkeypatch, size
):
    """Just over ASSAY_MAX_UPLOAD_BYTES: the route's streaming cap; far over: the
    Content-Length cap. Either way no dataset, no spooled file."""
    from app.core.config import get_settings
    from app.models import Dataset, Item

    monkeypatch.setattr(get_settings(), "max_upload_bytes", 4096)
    data = b"text,label\n" + b"fine,fresh\n" * (size // 11)
    response = upload(client, admin_headers, project["id"], data)
    assert response.status_code == 413, response.text
    assert count_rows(Dataset) == 0 and count_rows(Item) == 0
    spool = get_settings().uploads_dir
    assert not spool.exists() or not any(spool.iterdir())


def test_page_upload_checks_the_csrf_field_before_the_file(client, admin_headers, project):
    """The page's form sends its token before the file: a file part first (or a wrong token)
    is refused before any of it is stored; the right token uploads."""
    from app.core.config import get_settings
    from app.models import Dataset

    token = page_login(client, "ada")
    url = f"/projects/{project['id']}/datasets"
    data = b"text,label\nfine,fresh\nbad,rotten\n"
    no_token = client.post(url, files={"file": ("s.csv", data)}, follow_redirects=False)
    wrong = client.post(
        url, data={"csrf_token": "x" * 43}, files={"file": ("s.csv", data)}, follow_redirects=False
    )
    assert (no_token.status_code, wrong.status_code) == (403, 403)
    spool = get_settings().uploads_dir
    assert count_rows(Dataset) == 0 and (not spool.exists() or not any(spool.iterdir()))
    good = client.post(
        url, data={"csrf_token": token}, files={"file": ("s.csv", data)}, follow_redirects=False
    )
    assert good.status_code == 303, good.text
    assert count_rows(Dataset) == 1


def test_chunked_upload_counts_part_headers_against_the_cap(
    client, admin_headers, project, monkeypatch
):
    """Every streamed byte of an upload counts, not only the file's and fields' data: a
    chunked body (no Content-Length) of parts padded with headers, or of thousands of empty
    fields, is past ASSAY_MAX_UPLOAD_BYTES + ASSAY_UPLOAD_FORM_OVERHEAD_BYTES: 413, nothing stored
    (before, part headers were never counted, so such a body streamed without end)."""
    from app.core.config import get_settings
    from app.models import Dataset, Item

    monkeypatch.setattr(get_settings(), "max_upload_bytes", 4096)
    cap = 4096 + get_settings().upload_form_overhead_bytes
    part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\n'
        "Content-Type: text/csv\r\n"
    ).encode()
    fine = b"\r\ntext,label\r\nfine,fresh\r\n" + f"--{BOUNDARY}--\r\n".encode()
    field = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f"\r\n'.encode()
    # python-multipart allows 8 headers of 4 KiB per part: 7 of padding, in parts repeated
    padded = field + b"".join(b"X-Pad%d: %s\r\n" % (i, b"p" * 4000) for i in range(7))
    padded_parts = (padded + b"\r\n\r\n") * (cap // len(padded) + 1) + part + fine
    many_fields = (field + b"\r\n\r\n") * (cap // len(field) + 1) + part + fine

    def chunked(body: bytes) -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    headers = {**admin_headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    url = f"/api/v1/projects/{project['id']}/datasets"
    for body in (padded_parts, many_fields):
        response = client.post(url, headers=headers, content=chunked(body))
        assert response.status_code == 413, response.text[:300]
        assert "larger than" in response.json()["message"]
    assert count_rows(Dataset) == 0 and count_rows(Item) == 0
    spool = get_settings().uploads_dir
    assert not spool.exists() or not any(spool.iterdir())


def test_uploads_behind_a_root_path_get_the_upload_cap(backend, monkeypatch):
    """Behind a proxy prefix (``root_path``, as uvicorn's --root-path sets it) the upload
    routes are still recognised by their route path: a file over the page-form cap but under
    the upload cap is imported, through the API and the page (before, the path with its
    prefix missed the upload routes: the form cap's 413, and the page's form guard read the
    multipart body itself, so the route found it consumed: a 500)."""
    from fastapi.testclient import TestClient

    from app.core.config import get_settings
    from app.main import create_app
    from app.models import Dataset
    from tests.conftest import _make_user

    monkeypatch.setattr(get_settings(), "max_form_body_bytes", 4096)
    data = b"text,label\n" + b"fine,fresh\n" * 1000  # 11 KB: over the form cap
    with TestClient(create_app(), root_path="/assay") as client:
        headers = {"Authorization": f"Bearer {_make_user('ada', 'admin')}"}
        created = client.post(
            "/assay/api/v1/projects", headers=headers, json={"name": "P", "labels": ["fresh", "b"]}
        )
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        files = {"file": ("s.csv", data, "text/csv")}
        api = client.post(f"/assay/api/v1/projects/{pid}/datasets", headers=headers, files=files)
        assert api.status_code == 201, api.text[:300]
        csrf = page_login(client, "ada")
        page = client.post(
            f"/assay/projects/{pid}/datasets",
            data={"csrf_token": csrf},
            files=files,
            follow_redirects=False,
        )
        assert page.status_code == 303, page.text[:300]
        assert count_rows(Dataset) == 2
