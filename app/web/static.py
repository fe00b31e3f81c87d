"""Static files with cache headers, so pages do not re-fetch CSS and scripts on every visit."""

from __future__ import annotations

from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope


def cache_control(max_age_s: int) -> str:
    """Public, then revalidated by ETag / Last-Modified once ``max_age_s`` has passed."""
    return f"public, max-age={max_age_s}"


class CachedStaticFiles(StaticFiles):
    def __init__(self, directory: Path, max_age_s: int) -> None:
        super().__init__(directory=directory)
        self.header = cache_control(max_age_s)

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = self.header
        return response
