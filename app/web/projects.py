"""Admin pages: projects, uploads, jobs with live progress."""

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from app.api.deps import RowId, page_project, visible_or_404
from app.api.uploads import BadUpload, UploadTooLarge, import_spooled, spool_form
from app.core.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    check_csrf,
    page_admin,
    page_user,
    polled_page_user,
    verify_csrf,
)
from app.core.config import get_settings
from app.core.db import get_db
from app.kinds import TaskKind
from app.kinds.errors import FormatError
from app.kinds.estimators import ESTIMATORS
from app.kinds.registry import KINDS
from app.models import ACTIVE_JOB_STATES, DatasetKind, Project, User
from app.schemas import LABEL_MAX_LENGTH, PROJECT_NAME_MAX_LENGTH
from app.services import projects as project_service
from app.services.datasets import ImportMode
from app.services.guidelines import BadGuidelines, guidelines_of, set_guidelines
from app.services.items import list_items
from app.services.jobs import JobConflict, start_train_score
from app.services.membership import job_for, members_of, sees_everything
from app.services.model_versions import version_history
from app.services.preselect import PRESELECT_CHOICES, BadPreselect, preselect_of, set_preselect
from app.services.results import latest_model_version
from app.services.retraining import (
    BadPolicy,
    corrections_since_latest,
    retrain_every_of,
    set_retrain_every,
)
from app.web.templating import fragment_of, render

router = APIRouter()
RECENT_JOBS = 5
TOP_ITEMS = 20


@router.get("/")
def home(request: Request, db: Session = Depends(get_db), user: User = Depends(page_user)):
    projects = project_service.list_projects(db, user)
    return render(request, "projects.html", user=user, projects=projects, error=None)


@router.post("/projects", dependencies=[Depends(verify_csrf)])
def create_project(
    request: Request,
    name: str = Form(...),
    labels: str = Form(...),
    task_kind: str = Form(TaskKind.text_classification.value, max_length=40),
    db: Session = Depends(get_db),
    user: User = Depends(page_admin),
):
    label_list = [label.strip() for label in labels.split(",") if label.strip()]
    error = None
    kind = TaskKind(task_kind) if task_kind in TaskKind.__members__ else None
    minimum = KINDS[kind].min_labels if kind else 2
    if kind is None:
        error = f"kind: one of {', '.join(TaskKind)}."
    elif (
        not name.strip()
        or len(set(label_list)) < minimum
        or len(set(label_list)) != len(label_list)
    ):
        noun = KINDS[kind].label_noun
        error = f"A project needs a name and at least {minimum} distinct {noun}."
    elif len(name.strip()) > PROJECT_NAME_MAX_LENGTH:
        error = f"name: at most {PROJECT_NAME_MAX_LENGTH} characters."
    elif any(len(label) > LABEL_MAX_LENGTH for label in label_list):
        error = f"labels: each at most {LABEL_MAX_LENGTH} characters."
    status_code = 422
    if not error:
        try:
            project = project_service.create_project(db, name, label_list, task_kind=kind)
        except project_service.BadProject as err:  # taken name, too many labels
            error = str(err)
            status_code = 409 if isinstance(err, project_service.ProjectNameTaken) else 422
    if error:
        projects = project_service.list_projects(db, user)
        return render(
            request,
            "projects.html",
            status_code=status_code,
            user=user,
            projects=projects,
            error=error,
        )
    db.commit()
    return RedirectResponse(f"/projects/{project.id}", status_code=303)


def render_project_page(
    request: Request,
    db: Session,
    user: User,
    project: Project,
    upload_error: str | None = None,
    settings_error: str | None = None,
    status_code: int = 200,
    policy_error: str | None = None,
    members_error: str | None = None,
):
    datasets = project_service.list_datasets(db, project)
    jobs = project_service.recent_jobs(db, project, RECENT_JOBS)
    pending = project_service.pending_count(db, project)
    top, _ = list_items(
        db, project, order="suspicion", limit=TOP_ITEMS, cursor=None, unscored=False
    )
    return render(
        request,
        "project.html",
        status_code=status_code,
        user=user,
        project=project,
        datasets=datasets,
        jobs=jobs,
        pending=pending,
        top=top,
        version=latest_model_version(db, project.id),
        upload_error=upload_error,
        settings_error=settings_error,
        dataset_kinds=list(DatasetKind),
        estimators=[e for e in ESTIMATORS.values() if e.task == project.task_kind],
        estimator=project_service.estimator_of(project),
        versions=version_history(db, project.id),
        retrain_every=retrain_every_of(project),
        corrections_pending=corrections_since_latest(db, project.id),
        policy_error=policy_error,
        members=members_of(db, project) if sees_everything(user) else [],
        members_error=members_error,
        preselect=preselect_of(project),
        preselect_choices=PRESELECT_CHOICES,
        guidelines=guidelines_of(project),
        max_guidelines_chars=get_settings().max_guidelines_chars,
    )


@router.get("/projects/{project_id}")
def project_page(
    request: Request,
    project: Project = Depends(page_project),  # first: a non-member gets 404
    db: Session = Depends(get_db),
    user: User = Depends(page_user),
):
    return render_project_page(request, db, user, project)


@router.post("/projects/{project_id}/datasets")
async def upload(
    request: Request,
    project: Project = Depends(page_project),  # first: a non-member gets 404
    db: Session = Depends(get_db),
    user: User = Depends(page_admin),
):
    """The body is read only now, after the login and admin checks, and the CSRF token
    (header, or the form field sent before the file, as the page's form does) is checked
    before any byte of the file is stored."""
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        check_csrf(request, header)

    def before_file(fields: dict[str, str]) -> None:
        if header is None:
            check_csrf(request, fields.get(CSRF_FIELD))

    def refuse(message: str, status_code: int):
        return render_project_page(
            request, db, user, project, upload_error=message, status_code=status_code
        )

    try:
        form = await spool_form(request, get_settings().uploads_dir, before_file=before_file)
    except (BadUpload, UploadTooLarge) as err:
        return refuse(str(err), 413 if isinstance(err, UploadTooLarge) else 400)
    if form.path is None:
        before_file(form.fields)
        return refuse("choose a file to upload", 422)
    try:
        kind = DatasetKind(form.fields.get("kind", DatasetKind.silver.value))
    except ValueError:
        form.path.unlink(missing_ok=True)
        return refuse(f"kind: one of {', '.join(k.value for k in DatasetKind)}", 422)
    try:
        mode = ImportMode(form.fields.get("mode", ImportMode.refuse.value))
    except ValueError:
        form.path.unlink(missing_ok=True)
        return refuse(f"ids already in the project: {', '.join(ImportMode)}", 422)
    try:
        await import_spooled(db, project, form.path, form.filename, kind, mode)
    except FormatError as err:
        db.rollback()
        return render_project_page(
            request, db, user, project, upload_error=str(err), status_code=422
        )
    db.commit()
    return RedirectResponse(f"/projects/{project.id}", status_code=303)


@router.post("/projects/{project_id}/jobs", dependencies=[Depends(verify_csrf)])
def start_job(
    request: Request,
    project: Project = Depends(page_project),  # first: a non-member gets 404
    db: Session = Depends(get_db),
    user: User = Depends(page_admin),
):
    try:
        job = start_train_score(db, project)
    except JobConflict as err:
        job = err.job
    return render(request, "_job.html", job=job, active=job.state in ACTIVE_JOB_STATES)


@router.post("/projects/{project_id}/settings", dependencies=[Depends(verify_csrf)])
def update_settings(
    request: Request,
    project: Project = Depends(page_project),  # first: a non-member gets 404
    estimator: str | None = Form(None),
    preselect: str | None = Form(None, max_length=20),
    guidelines: str | None = Form(None),
    db: Session = Depends(get_db),
    user: User = Depends(page_admin),
):
    """The ranking, what the queue pre-selects, the annotation guidelines: each form sends
    its own fields; all of them are checked before any is stored."""
    try:
        if guidelines is not None:
            set_guidelines(project, guidelines)
        if preselect is not None:
            set_preselect(project, preselect)
        if estimator is not None:
            project_service.set_estimator(project, estimator)
    except (project_service.UnknownEstimator, BadPreselect, BadGuidelines) as err:
        db.rollback()  # the project's settings as they were
        return render_project_page(
            request, db, user, project, settings_error=str(err), status_code=422
        )
    db.commit()
    return RedirectResponse(f"/projects/{project.id}#settings", status_code=303)


@router.post("/projects/{project_id}/retraining", dependencies=[Depends(verify_csrf)])
def update_retraining(
    request: Request,
    project: Project = Depends(page_project),  # first: a non-member gets 404
    retrain_every: str = Form(""),
    db: Session = Depends(get_db),
    user: User = Depends(page_admin),
):
    """The retraining policy: every N corrections, or (empty) by hand only."""
    try:
        set_retrain_every(project, int(retrain_every) if retrain_every.strip() else None)
    except ValueError as err:  # not a number, or below 1
        message = str(err) if isinstance(err, BadPolicy) else "N must be a whole number"
        return render_project_page(
            request, db, user, project, policy_error=message, status_code=422
        )
    db.commit()
    return RedirectResponse(f"/projects/{project.id}#model-versions", status_code=303)


@router.get("/jobs/{job_id}/progress")
def job_progress(
    request: Request,
    job_id: RowId,
    db: Session = Depends(get_db),
    user: User = Depends(polled_page_user),
):
    """A job's progress bar, for a job of a project the user may see. The page polls it every
    second: that is not activity (``polled_page_user``), so the session still idles out."""
    job = visible_or_404(job_for, db, job_id, user)
    fragment_of(request, f"/projects/{job.project_id}")
    return render(request, "_job.html", job=job, active=job.state in ACTIVE_JOB_STATES)
