"""The project page's export links: the same streamed file as the API, with a page login."""

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from app.api.export import export_response
from app.auth import page_admin
from app.db import get_db
from app.models import DatasetKind, Project, User
from app.services.export import ExportFormat

router = APIRouter()


@router.get("/projects/{project_id}/export")
def download_export(
    project_id: int,
    format: ExportFormat = Query(ExportFormat.csv),
    kind: list[DatasetKind] | None = Query(None),
    db: Session = Depends(get_db),
    _: User = Depends(page_admin),
) -> StreamingResponse:
    project = db.get(Project, project_id)
    if project is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
    return export_response(project, format, kind)
