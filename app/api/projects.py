"""Projects and their datasets."""

from enum import Enum
from pathlib import Path
from typing import TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app.api.deps import get_project
from app.api.errors import JOB_RUNNING, ValidationErrorOut, errors, job_running
from app.api.uploads import (
    BadUpload,
    SpooledForm,
    UploadTooLarge,
    import_spooled,
    spool_form,
)
from app.core.auth import api_admin, api_user
from app.core.config import get_settings
from app.core.db import get_db
from app.kinds.errors import FormatError
from app.models import Dataset, DatasetKind, Project, User
from app.schemas import (
    DatasetOut,
    DatasetUpload,
    JobOut,
    ModelVersionOut,
    ProjectCreate,
    ProjectOut,
    ProjectUpdate,
    UploadError,
)
from app.services import projects as project_service
from app.services.datasets import ImportMode
from app.services.guidelines import BadGuidelines, set_guidelines
from app.services.ingest_jobs import start_import_job
from app.services.jobs import JobConflict
from app.services.model_versions import version_history
from app.services.preselect import set_preselect
from app.services.queue import set_overlap
from app.services.retraining import set_retrain_every

E = TypeVar("E", bound=Enum)
router = APIRouter(tags=["projects"])


@router.post(
    "/projects",
    response_model=ProjectOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409, 422),
)
def create_project(
    body: ProjectCreate, db: Session = Depends(get_db), _: User = Depends(api_admin)
) -> Project:
    try:
        project = project_service.create_project(
            db, body.name, body.labels, body.estimator, body.task_kind
        )
    except project_service.ProjectNameTaken as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    db.commit()
    return project


@router.patch(
    "/projects/{project_id}",
    response_model=ProjectOut,
    responses=errors(400, 401, 403, 404, 422),
)
def update_project(
    body: ProjectUpdate,
    project: Project = Depends(get_project),
    db: Session = Depends(get_db),
    _: User = Depends(api_admin),
) -> Project:
    """Change the ranking (from the next training job on), the queue's overlap, the
    retraining policy, what the queue pre-selects, or the annotation guidelines."""
    # the changes that can be refused come first: a refusal leaves nothing half-changed
    try:
        if body.estimator is not None:  # a ranking of another kind of project is refused
            project_service.set_estimator(project, body.estimator)
        if body.guidelines is not None:
            set_guidelines(project, body.guidelines)
    except (project_service.UnknownEstimator, BadGuidelines) as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    if body.preselect is not None:
        set_preselect(project, body.preselect)
    if "retrain_every" in body.model_fields_set:
        set_retrain_every(project, body.retrain_every)
    if body.overlap is not None:
        set_overlap(project, body.overlap)
    db.commit()
    return project


@router.get("/projects", response_model=list[ProjectOut], responses=errors(401))
def list_projects(db: Session = Depends(get_db), user: User = Depends(api_user)) -> list[Project]:
    """The projects you are a member of (admins: all)."""
    return project_service.list_projects(db, user)


@router.get("/projects/{project_id}", response_model=ProjectOut, responses=errors(401, 404, 422))
def read_project(project: Project = Depends(get_project), _: User = Depends(api_user)) -> Project:
    return project


@router.get(
    "/projects/{project_id}/model-versions",
    response_model=list[ModelVersionOut],
    responses=errors(401, 404, 422),
)
def list_model_versions(
    project: Project = Depends(get_project),
    db: Session = Depends(get_db),
    _: User = Depends(api_user),
) -> list[dict]:
    """Newest first, each with its metrics and what changed since the version before."""
    return [v.as_dict() for v in version_history(db, project.id)]


@router.get(
    "/projects/{project_id}/datasets",
    response_model=list[DatasetOut],
    responses=errors(401, 404, 422),
)
def list_datasets(
    project: Project = Depends(get_project),
    db: Session = Depends(get_db),
    _: User = Depends(api_user),
) -> list[Dataset]:
    return project_service.list_datasets(db, project)


UPLOAD_FORM = {  # main.create_app adds the model to the document's components
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"$ref": f"#/components/schemas/{DatasetUpload.__name__}"}
            }
        },
    }
}


@router.post(
    "/projects/{project_id}/datasets",
    response_model=list[DatasetOut],
    status_code=status.HTTP_201_CREATED,
    openapi_extra=UPLOAD_FORM,  # the route reads its body itself, after authenticating
    responses={
        **errors(400, 401, 403, 404),
        **JOB_RUNNING,
        202: {"model": JobOut, "description": "over ASSAY_IMPORT_BACKGROUND_BYTES: a job"},
        413: {"model": UploadError, "description": "larger than ASSAY_MAX_UPLOAD_BYTES"},
        422: {
            "model": UploadError | ValidationErrorOut,
            "description": "a bad file (file, line, field) or a bad form field",
        },
    },
)
async def upload_dataset(
    request: Request,
    project: Project = Depends(get_project),
    db: Session = Depends(get_db),
    _: User = Depends(api_admin),
):
    """CSV or JSONL with text, label[, id, split, reference_label]; all rows or none.

    Multipart form: ``file`` and optionally ``kind`` and ``mode``: ids already in the project
    are refused (422 naming the first, nothing stored) unless ``mode`` is ``replace`` (update
    those items, a label event ``import`` where the label changed) or ``skip`` (keep them).
    The body is read only once the token is known to be an admin's, and streamed to disk
    under ASSAY_MAX_UPLOAD_BYTES."""
    settings = get_settings()
    try:
        form = await spool_form(request, settings.uploads_dir)
    except UploadTooLarge as err:
        return JSONResponse(
            status_code=413,
            content=UploadError(
                file=err.filename, line=None, field=None, message=str(err)
            ).model_dump(),
        )
    except BadUpload as err:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(err)) from None
    if form.path is None:
        return _field_error("file", "Field required", "missing")
    kind = _enum_field(form, "kind", DatasetKind.silver)
    if isinstance(kind, JSONResponse):
        return kind
    mode = _enum_field(form, "mode", ImportMode.refuse)
    if isinstance(mode, JSONResponse):
        return mode
    if form.path.stat().st_size > settings.import_background_bytes:
        return _import_in_background(db, project, form.path, form.filename, kind, mode)
    try:
        datasets = await import_spooled(db, project, form.path, form.filename, kind, mode)
    except FormatError as err:
        db.rollback()
        return JSONResponse(status_code=422, content=err.as_dict())
    db.commit()
    return datasets


def _field_error(name: str, message: str, kind: str) -> JSONResponse:
    """The 422 FastAPI gives for a bad form field (the route parses its form itself)."""
    issue = {"loc": ["body", name], "msg": message, "type": kind}
    return JSONResponse(status_code=422, content={"detail": [issue]})


def _enum_field(form: SpooledForm, name: str, default: E) -> E | JSONResponse:
    """Form field ``name`` as a member of ``default``'s enum, or, for a value it does not
    know, the 422 FastAPI gives a bad enum field, with the spooled upload deleted (nothing
    stays behind a refusal). The upload route parses ``kind`` and ``mode`` itself, alike."""
    choices = type(default)
    try:
        return choices(form.fields.get(name, default.value))
    except ValueError:
        if form.path is not None:
            form.path.unlink(missing_ok=True)
        known = ", ".join(c.value for c in choices)
        return _field_error(name, f"Input should be one of: {known}", "enum")


def _import_in_background(
    db: Session,
    project: Project,
    path: Path,
    filename: str,
    kind: DatasetKind,
    mode: ImportMode,
) -> JSONResponse:
    """A file over ASSAY_IMPORT_BACKGROUND_BYTES: 202 with the import job to poll."""
    try:
        job = start_import_job(db, project, path, filename, kind, mode)
    except JobConflict as err:
        path.unlink(missing_ok=True)
        raise job_running(err) from None
    return JSONResponse(
        status_code=status.HTTP_202_ACCEPTED,
        content=jsonable_encoder(JobOut.model_validate(job)),
    )
