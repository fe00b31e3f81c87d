"""Streaming a multipart upload straight into a spool file with a size cap, so a huge upload
is refused and a big one is never held in memory whole (the import then streams it from disk).

The routes call this only after authenticating the user as an admin (and, on the page, once
the CSRF field has arrived): FastAPI's own ``UploadFile`` parsing would spool the file before
any dependency ran, so an anonymous request could fill the disk before its 401.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core.config import get_settings
from app.core.text import size_text
from app.models import Dataset, DatasetKind, Project
from app.services.datasets import ImportMode, import_dataset


class UploadTooLarge(ValueError):
    def __init__(self, message: str, filename: str = "upload"):
        super().__init__(message)
        self.filename = filename


class BadUpload(ValueError):
    """Not a multipart form this route can read (a 400 or 422: the message says why)."""


@dataclass
class SpooledForm:
    """The form's text fields, and its one file spooled to ``path`` (None: no file sent)."""

    fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    filename: str = "upload"


class _Recorder:
    """python-multipart callbacks that only record events; the async loop acts on them (file
    writes go to a thread, as in Starlette's parser)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes | None, bytes | None]] = []
        self.name, self.value, self.disposition = b"", b"", b""

    def callbacks(self) -> dict[str, Callable]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self.disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def on_header_end(self) -> None:
        if self.name.lower() == b"content-disposition":
            self.disposition = self.value
        self.name, self.value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        self.events.append(("begin", options.get(b"name"), options.get(b"filename")))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.events.append(("data", data[start:end], None))

    def on_part_end(self) -> None:
        self.events.append(("end", None, None))


def _boundary(request: Request) -> bytes:
    media, params = parse_options_header(request.headers.get("content-type", ""))
    if media != b"multipart/form-data" or not params.get(b"boundary"):
        raise BadUpload("send the file as multipart/form-data")
    return params[b"boundary"]


def _text(raw: bytes | None, what: str) -> str:
    try:
        return (raw or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise BadUpload(f"the form's {what} is not UTF-8") from None


async def spool_form(
    request: Request,
    directory: Path,
    *,
    file_field: str = "file",
    before_file: Callable[[dict[str, str]], None] | None = None,
) -> SpooledForm:
    """Read the request's multipart body in order, at most ASSAY_MAX_UPLOAD_BYTES plus
    ASSAY_UPLOAD_FORM_OVERHEAD_BYTES in all (part headers and framing included): text fields
    into memory (at most ASSAY_UPLOAD_FORM_OVERHEAD_BYTES in all), the one file part
    ``file_field`` into a new file under ``directory`` (at most ASSAY_MAX_UPLOAD_BYTES, else
    ``UploadTooLarge`` and the partial file removed). ``before_file(fields)`` runs when the
    file part starts, before any of its bytes is written: it may raise to refuse. The caller
    deletes the file (or hands it to an import job)."""
    settings = get_settings()
    max_file, max_other = settings.max_upload_bytes, settings.upload_form_overhead_bytes
    recorder = _Recorder()
    parser = MultipartParser(_boundary(request), recorder.callbacks())
    form = SpooledForm()
    out = None
    part_name, part_is_file, part_data = "", False, bytearray()
    max_total = max_file + max_other
    file_size = other_size = total_size = 0
    file_done = False
    try:
        async for chunk in request.stream():
            # Every byte counts against the whole body's cap, part headers and framing too:
            # a chunked body with a huge part header (or endless tiny parts) is not a file
            # part's data, but must not stream on forever either.
            total_size += len(chunk)
            if total_size > max_total:
                raise UploadTooLarge(
                    f"request body is larger than {size_text(max_total)}", form.filename
                )
            try:
                parser.write(chunk)
            except FormParserError:
                raise BadUpload("the multipart form is malformed") from None
            writes = []
            for event, value, filename in recorder.events:
                if event == "begin":
                    part_name, part_data = _text(value, "field name"), bytearray()
                    part_is_file = filename is not None
                    if part_is_file:
                        if part_name != file_field or out is not None:
                            raise BadUpload(f"send one file, as the field '{file_field}'")
                        if before_file is not None:
                            before_file(form.fields)
                        form.filename = _text(filename, "file name") or "upload"
                        suffix = Path(form.filename).suffix.lower()[:16]
                        directory.mkdir(parents=True, exist_ok=True)
                        handle, name = tempfile.mkstemp(
                            prefix="upload-", suffix=suffix, dir=directory
                        )
                        form.path, out = Path(name), os.fdopen(handle, "wb")
                elif event == "data" and part_is_file:
                    file_size += len(value)
                    if file_size > max_file:
                        raise UploadTooLarge(
                            f"file is larger than the upload limit of {size_text(max_file)}",
                            form.filename,
                        )
                    writes.append(value)
                elif event == "data":
                    other_size += len(value)
                    if other_size > max_other:
                        raise UploadTooLarge(
                            f"the form's fields are larger than {size_text(max_other)}"
                        )
                    part_data += value
                elif event == "end" and part_is_file:
                    file_done = True
                elif event == "end":
                    form.fields.setdefault(part_name, _text(bytes(part_data), part_name))
            recorder.events.clear()
            if writes:
                await run_in_threadpool(out.write, b"".join(writes))
        parser.finalize()
        if out is not None and not file_done:
            raise BadUpload("the multipart form ends inside the file (truncated)")
    except BaseException:
        if out is not None:
            out.close()
            form.path.unlink(missing_ok=True)
        raise
    if out is not None:
        out.close()
    return form


async def import_spooled(
    session: Session,
    project: Project,
    path: Path,
    filename: str,
    kind: DatasetKind,
    mode: ImportMode = ImportMode.refuse,
) -> list[Dataset]:
    """Import a spooled upload in a worker thread (the event loop keeps serving), then delete
    it; the caller commits, or rolls back on ``FormatError``."""
    try:
        return await run_in_threadpool(
            import_dataset,
            session,
            project,
            path,
            filename,
            kind,
            max_rows=get_settings().max_upload_rows,
            mode=mode,
        )
    finally:
        path.unlink(missing_ok=True)
