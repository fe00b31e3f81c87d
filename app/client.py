"""A Python client for Assay's JSON API, on httpx: ``from app.client import Client``.

It speaks HTTP only and imports nothing else of Assay (a contract in pyproject.toml), so a
script that drives a server needs this file and httpx. It does what each script would
otherwise write again: logs in, streams uploads from disk and exports to disk, waits for
jobs, pages through items by their cursor, and gives every queue action an idempotency key,
so a call retried after a dropped connection changes nothing twice. A refusal is an
``ApiError`` carrying the server's status and detail.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

API_PREFIX = "/api/v1"


class ApiError(Exception):
    """The server answered 4xx or 5xx. ``detail``: its message, the 422's list of issues (each
    with ``loc`` naming the field), an upload's ``{file, line, field, message}``, or a job
    conflict's ``{message, job_id}``."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = response.text
        self.detail = body["detail"] if isinstance(body, dict) and "detail" in body else body
        request = response.request
        super().__init__(f"{request.method} {request.url.path}: {self.status} {self.detail}")


class JobFailed(Exception):
    """A job ended failed or cancelled; ``job`` is its last state (``error`` says why)."""

    def __init__(self, job: dict) -> None:
        self.job = job
        super().__init__(f"job {job['id']} ({job['kind']}) {job['state']}: {job['error']}")


class JobTimeout(TimeoutError):
    """``Client.wait`` gave up; the job goes on (``job``: its last state)."""

    def __init__(self, job: dict, timeout: float) -> None:
        self.job = job
        super().__init__(f"job {job['id']} still {job['state']} after {timeout:g} s")


def new_key() -> str:
    """A fresh idempotency key: the server stores an action once per user and key."""
    return uuid.uuid4().hex


class Client:
    """One server, one user: a token, or a username and password exchanged for one.

    Every method returns the API's JSON (dicts and lists, as /api/v1/docs describes them).
    Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        token_name: str = "api",
        timeout: float = 60.0,
    ) -> None:
        if (token is None) == (username is None):
            raise ValueError("give either a token, or a username and a password")
        self._http = httpx.Client(base_url=base_url.rstrip("/") + API_PREFIX, timeout=timeout)
        if token is None:
            body = {"username": username, "password": password or "", "name": token_name}
            token = self._send("POST", "/auth/token", json=body)["token"]
        self.token = token
        self._http.headers["Authorization"] = f"Bearer {token}"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON body of a 2xx answer (None for 204), else ``ApiError``."""
        response = self._http.request(method, path, **kwargs)
        if response.is_error:
            raise ApiError(response)
        return None if response.status_code == 204 else response.json()

    # --- projects and datasets ---

    def projects(self) -> list[dict]:
        """The projects this user is a member of (admins: all)."""
        return self._send("GET", "/projects")

    def project(self, project_id: int) -> dict:
        return self._send("GET", f"/projects/{project_id}")

    def create_project(
        self, name: str, labels: Sequence[str], *, estimator: str | None = None
    ) -> dict:
        body = {"name": name, "labels": list(labels), "estimator": estimator}
        return self._send("POST", "/projects", json=body)

    def update_project(self, project_id: int, **changes: Any) -> dict:
        """``estimator``, ``overlap``, ``retrain_every``, ``preselect``, ``guidelines``."""
        return self._send("PATCH", f"/projects/{project_id}", json=changes)

    def datasets(self, project_id: int) -> list[dict]:
        return self._send("GET", f"/projects/{project_id}/datasets")

    def upload(
        self,
        project_id: int,
        data: str | os.PathLike[str] | bytes,
        *,
        kind: str = "silver",
        mode: str = "refuse",
        filename: str | None = None,
    ) -> list[dict] | dict:
        """A CSV or JSONL file (a path, streamed from disk, or its bytes) as a dataset of
        ``kind``. ``mode`` says what to do with ids already in the project: ``refuse`` the
        file, ``replace`` those items or ``skip`` them. Returns the new datasets, or, for a
        file the server imports in the background, its import job (pass it to ``wait``)."""
        fields = {"kind": kind, "mode": mode}
        if isinstance(data, bytes):
            return self._upload(project_id, filename or "upload.csv", data, fields)
        path = Path(data)
        with path.open("rb") as handle:
            return self._upload(project_id, filename or path.name, handle, fields)

    def _upload(
        self, project_id: int, name: str, content: bytes | IO[bytes], fields: dict[str, str]
    ) -> list[dict] | dict:
        files = {"file": (name, content)}
        return self._send("POST", f"/projects/{project_id}/datasets", files=files, data=fields)

    def model_versions(self, project_id: int) -> list[dict]:
        """Newest first, with their metrics and what changed since the version before."""
        return self._send("GET", f"/projects/{project_id}/model-versions")

    # --- jobs ---

    def train(self, project_id: int) -> dict:
        """Start training on the current labels and scoring every training item (admins);
        the job, queued. One already queued or running is an ``ApiError`` 409 whose
        ``detail["job_id"]`` names it."""
        return self._send("POST", f"/projects/{project_id}/jobs", json={})

    def job(self, job_id: int) -> dict:
        return self._send("GET", f"/jobs/{job_id}")

    def wait(
        self,
        job: int | dict,
        *,
        timeout: float | None = None,
        interval: float = 1.0,
        progress: Callable[[dict], object] | None = None,
    ) -> dict:
        """Poll a job until it succeeds and return it; ``progress(job)`` sees each poll whose
        state, ``stage`` or ``progress`` (0 to 1) moved since the last one it saw. ``JobFailed``
        when it fails or is cancelled, ``JobTimeout`` after ``timeout`` seconds (None: no
        limit)."""
        job_id = job["id"] if isinstance(job, dict) else job
        deadline = None if timeout is None else time.monotonic() + timeout
        shown = None
        while True:
            polled = self.job(job_id)
            now = (polled["state"], polled["stage"], polled["progress"])
            if progress is not None and now != shown:
                progress(polled)
                shown = now
            if polled["state"] == "succeeded":
                return polled
            if polled["state"] in ("failed", "cancelled"):
                raise JobFailed(polled)
            if deadline is not None and time.monotonic() >= deadline:
                raise JobTimeout(polled, timeout)
            time.sleep(interval)

    # --- items ---

    def items(
        self, project_id: int, *, order: str = "suspicion", page_size: int = 100, **filters: Any
    ) -> Iterator[dict]:
        """Every item of the project, page by page as they are read (``order``: ``suspicion``
        or ``id``). ``filters`` go to the server as they are (``status="pending"``,
        ``dataset_kind="silver"``, ``text="..."``, ...; None leaves one out)."""
        params = {"order": order, "limit": page_size}
        params |= {name: value for name, value in filters.items() if value is not None}
        cursor = None
        while True:
            query = params if cursor is None else {**params, "cursor": cursor}
            page = self._send("GET", f"/projects/{project_id}/items", params=query)
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def item(self, item_id: int) -> dict:
        """The item with its prediction, scores, evidence and label history."""
        return self._send("GET", f"/items/{item_id}")

    # --- decisions (each with an idempotency key: a fresh one unless given) ---

    def next_item(self, project_id: int) -> dict | None:
        """The item this user holds, or the next one, leased to them; None: nothing left."""
        return self._send("POST", f"/projects/{project_id}/queue/next")

    def label(self, item_id: int, label: str, *, key: str | None = None) -> dict:
        """Decide an item's label (on a decided item, a reviewer's or admin's override)."""
        body = {"label": label, "idempotency_key": key or new_key()}
        return self._send("POST", f"/items/{item_id}/label", json=body)

    def skip(self, item_id: int, mode: str = "later", *, key: str | None = None) -> dict:
        """``later``: back of my queue; ``pass``: never shown to me again."""
        body = {"mode": mode, "idempotency_key": key or new_key()}
        return self._send("POST", f"/items/{item_id}/skip", json=body)

    def undo(self, project_id: int, *, key: str | None = None) -> dict:
        """Take back this user's newest decision in the project; the item, as it is now."""
        body = {"idempotency_key": key or new_key()}
        return self._send("POST", f"/projects/{project_id}/undo", json=body)

    def review(self, item_id: int, label: str | None = None, *, key: str | None = None) -> dict:
        """Approve a decided item (no label) or override it (reviewers and admins)."""
        body = {"label": label, "idempotency_key": key or new_key()}
        return self._send("POST", f"/items/{item_id}/review", json=body)

    # --- bulk changes (reviewers and admins) ---

    def similar(self, item_id: int, *, limit: int | None = None, **filters: Any) -> list[dict]:
        """Items like this one (most shared evidence first): ``{"item", "shared_evidence"}``."""
        params = {"limit": limit, **filters}
        query = {name: value for name, value in params.items() if value is not None}
        return self._send("GET", f"/items/{item_id}/similar", params=query)

    def relabel(
        self,
        project_id: int,
        item_ids: Sequence[int],
        label: str,
        *,
        note: str | None = None,
        preview: dict | None = None,
        key: str | None = None,
    ) -> dict:
        """Set ``label`` on the items in one change. Pass the ``preview_relabel`` answer as
        ``preview`` to have the server refuse (409) if an item changed since you looked."""
        body: dict[str, Any] = {
            "item_ids": list(item_ids),
            "label": label,
            "note": note,
            "idempotency_key": key or new_key(),
        }
        if preview is not None:
            body["expected"] = [
                {k: row[k] for k in ("item_id", "current_label", "status")}
                for row in preview["items"]
            ]
        return self._send("POST", f"/projects/{project_id}/relabel", json=body)

    def preview_relabel(self, project_id: int, item_ids: Sequence[int], label: str) -> dict:
        """What ``relabel`` would do to each item; writes nothing."""
        body = {"item_ids": list(item_ids), "label": label, "idempotency_key": new_key()}
        return self._send("POST", f"/projects/{project_id}/relabel", json=body | {"dry_run": True})

    def undo_relabel(self, project_id: int, group_id: int) -> dict:
        """Take a bulk change back as a whole (its ``group_id``)."""
        return self._send("POST", f"/projects/{project_id}/relabel/{group_id}/undo")

    # --- export ---

    def export(
        self,
        project_id: int,
        path: str | os.PathLike[str],
        *,
        format: str = "csv",
        kinds: Sequence[str] = (),
        **filters: Any,
    ) -> Path:
        """Stream the project's items (``format`` ``csv`` or ``jsonl``; only datasets of
        ``kinds``, only the items ``filters`` keep, as for ``items``) to ``path``, never
        held in memory whole. The file appears under its name only once complete."""
        params = [("format", format), *(("kind", kind) for kind in kinds)]
        params += [(name, value) for name, value in filters.items() if value is not None]
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        with self._http.stream("GET", f"/projects/{project_id}/export", params=params) as answer:
            if answer.is_error:
                answer.read()
                raise ApiError(answer)
            try:
                with partial.open("wb") as out:
                    for chunk in answer.iter_bytes():
                        out.write(chunk)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        partial.replace(target)
        return target
