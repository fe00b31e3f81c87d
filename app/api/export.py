"""Download a project's items with provenance in its kind's formats (streamed, any size)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse

from app.api.deps import get_project
from app.api.errors import errors
from app.api.filters import item_filter
from app.core.auth import api_admin
from app.core.config import get_settings
from app.kinds import TaskKind
from app.kinds.registry import KINDS, spec_of
from app.models import DatasetKind, Project, User
from app.services.export import MEDIA_TYPES, ExportFormat, stream_export
from app.services.item_filters import ItemFilter

router = APIRouter(tags=["export"])


def export_response(
    project: Project,
    fmt: ExportFormat | None,
    kinds: list[DatasetKind] | None,
    filters: ItemFilter | None = None,
) -> StreamingResponse:
    """The streamed file as an attachment; shared by the API, the project page and the data
    browser (``filters``: only the items it shows). ``fmt`` None: the kind's first format; one
    the kind has not is a 422."""
    exports = spec_of(project).exports
    fmt = fmt or next(iter(exports))
    if fmt not in exports:
        offered = ", ".join(exports)
        raise HTTPException(422, f"format '{fmt}': a {project.task_kind} project exports {offered}")
    body = stream_export(project.id, exports[fmt], kinds, get_settings().export_batch_rows, filters)
    filename = f"assay-project-{project.id}.{fmt.value}"
    return StreamingResponse(
        body,
        media_type=MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/projects/{project_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {  # text, so generated clients return its content (CSV first: they read one)
            "description": "the file, streamed: CSV or JSON Lines (one object per line)",
            "content": {m: {"schema": {"type": "string"}} for m in MEDIA_TYPES.values()},
        },
        **errors(401, 403, 404, 422),
    },
    description="One row per item, in id order, in a format of the project's kind. "
    + " ".join(
        f"{kind}: "
        + "; ".join(f"{fmt}: {e.description}" for fmt, e in KINDS[kind].exports.items())
        + "."
        for kind in TaskKind
    ),
)
def export_project(
    format: ExportFormat | None = Query(
        None,
        description="a format of the project's kind ("
        + "; ".join(f"{kind}: {', '.join(KINDS[kind].exports)}" for kind in TaskKind)
        + "); none: the kind's first",
    ),
    kind: list[DatasetKind] | None = Query(None, description="only these dataset kinds"),
    filters: ItemFilter = Depends(item_filter),
    project: Project = Depends(get_project),
    _: User = Depends(api_admin),
) -> StreamingResponse:
    """The project's items with silver, final and reference labels, who decided and when, and
    (text classification) the newest model's prediction, suspicion rank, scores and suggested
    label; the item list's filters export just the items they keep."""
    return export_response(project, format, kind, filters)
