"""Spooling an uploaded file to disk in chunks with a size cap, so a huge upload is refused and
a big one is never held in memory whole (the import then streams it from disk)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from fastapi import UploadFile
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.config import get_settings
from app.models import Dataset, DatasetKind, Project
from app.services.datasets import import_dataset

CHUNK = 1 << 20


class UploadTooLarge(ValueError):
    pass


async def spool_upload(upload: UploadFile, max_bytes: int, directory: Path) -> Path:
    """Copy ``upload`` into a new file under ``directory`` and return its path; the caller
    deletes it (or hands it to an import job). Past ``max_bytes`` the partial file is removed
    and ``UploadTooLarge`` raised."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = Path(upload.filename or "").suffix.lower()[:16]
    handle, name = tempfile.mkstemp(prefix="upload-", suffix=suffix, dir=directory)
    path = Path(name)
    size = 0
    try:
        with os.fdopen(handle, "wb") as out:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge(
                        f"file is larger than the upload limit of {max_bytes // (1 << 20)} MiB"
                    )
                await run_in_threadpool(out.write, chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def import_spooled(
    session: Session, project: Project, path: Path, filename: str, kind: DatasetKind
) -> list[Dataset]:
    """Import a spooled upload in a worker thread (the event loop keeps serving), then delete
    it; the caller commits, or rolls back on ``IngestError``."""
    try:
        return await run_in_threadpool(
            import_dataset,
            session,
            project,
            path,
            filename,
            kind,
            max_rows=get_settings().max_upload_rows,
        )
    finally:
        path.unlink(missing_ok=True)
