"""The project page's export links: the same streamed file as the API, with a page login."""

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from app.api.deps import get_project
from app.api.export import export_response
from app.auth import page_admin
from app.models import DatasetKind, Project, User
from app.services.export import ExportFormat

router = APIRouter()


@router.get("/projects/{project_id}/export")
def download_export(
    format: ExportFormat = Query(ExportFormat.csv),
    kind: list[DatasetKind] | None = Query(None),
    _: User = Depends(page_admin),
    project: Project = Depends(get_project),
) -> StreamingResponse:
    return export_response(project, format, kind)
