"""The project page's export links: the same streamed file as the API, with a page login."""

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from app.api.deps import page_project
from app.api.export import export_response
from app.api.filters import item_filter
from app.core.auth import page_admin
from app.models import DatasetKind, Project, User
from app.services.export import ExportFormat
from app.services.item_filters import ItemFilter

router = APIRouter()


@router.get("/projects/{project_id}/export")
def download_export(
    format: ExportFormat | None = Query(None),
    kind: list[DatasetKind] | None = Query(None),
    filters: ItemFilter = Depends(item_filter),
    project: Project = Depends(page_project),  # before the role check: a non-member gets 404
    _: User = Depends(page_admin),
) -> StreamingResponse:
    return export_response(project, format, kind, filters)
