"""Reading an uploaded file with a size cap, so a huge upload is refused, not buffered."""

from __future__ import annotations

from fastapi import UploadFile

CHUNK = 1 << 20


class UploadTooLarge(ValueError):
    pass


async def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while chunk := await upload.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise UploadTooLarge(
                f"file is larger than the upload limit of {max_bytes // (1 << 20)} MiB"
            )
        parts.append(chunk)
    return b"".join(parts)
