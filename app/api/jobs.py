"""Start jobs and poll them."""

from fastapi import APIRouter, Depends, status
from sqlalchemy.orm import Session

from app.api.deps import get_job, get_project
from app.api.errors import JOB_RUNNING, errors, job_running
from app.core.auth import api_admin, api_user
from app.core.db import get_db
from app.models import Job, Project, User
from app.schemas import JobCreate, JobOut
from app.services.jobs import JobConflict, start_train_score

router = APIRouter(tags=["jobs"])


@router.post(
    "/projects/{project_id}/jobs",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(400, 401, 403, 404, 422) | JOB_RUNNING,
)
def create_job(
    body: JobCreate,
    project: Project = Depends(get_project),
    db: Session = Depends(get_db),
    _: User = Depends(api_admin),
) -> Job:
    """Train on the current labels and score every training item (runs on a worker)."""
    try:
        return start_train_score(db, project)
    except JobConflict as err:
        raise job_running(err) from None


@router.get("/jobs/{job_id}", response_model=JobOut, responses=errors(401, 404, 422))
def read_job(job: Job = Depends(get_job), _: User = Depends(api_user)) -> Job:
    """A job of a project the caller may see."""
    return job
