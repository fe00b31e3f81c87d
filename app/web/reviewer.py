"""Pages around the shared queue: the reviewer's list, and the project's overlap and agreement."""

import uuid

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from sqlalchemy.orm import Session

from app.api.deps import page_project, page_project_item
from app.core.auth import page_admin, page_user, verify_csrf
from app.core.db import get_db
from app.models import Item, Project, Role, User
from app.schemas import ANNOTATION_MAX_LENGTH
from app.services.agreement import agreement
from app.services.queue import DecisionError, overlap_of, set_overlap
from app.services.reviews import ReviewRow, awaiting_review, can_review, review, voters
from app.web.review import apply_action
from app.web.templating import fragment_of, render

router = APIRouter()
REVIEW_PAGE = 100


def page_reviewer(user: User = Depends(page_user)) -> User:
    if not can_review(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "reviewer role required")
    return user


@router.get("/projects/{project_id}/review")
def review_page(
    request: Request,
    project: Project = Depends(page_project),  # first: a non-member gets 404
    db: Session = Depends(get_db),
    user: User = Depends(page_reviewer),
):
    rows = awaiting_review(db, project, REVIEW_PAGE)
    return render(
        request,
        "review.html",
        user=user,
        project=project,
        rows=[(row, uuid.uuid4().hex) for row in rows],
    )


@router.post("/projects/{project_id}/review/{item_id}", dependencies=[Depends(verify_csrf)])
def review_decision(
    request: Request,
    project: Project = Depends(page_project),  # first: a non-member gets 404
    item: Item = Depends(page_project_item),
    idempotency_key: str = Form(..., min_length=8, max_length=100),
    label: str = Form("", max_length=ANNOTATION_MAX_LENGTH),
    db: Session = Depends(get_db),
    user: User = Depends(page_reviewer),
):
    """Approve (no label) or override; answers with the row, marked done or with the error."""
    error = apply_action(
        db, lambda: review(db, project, item, user, idempotency_key, label or None)
    )
    db.refresh(item)
    return render(
        request,
        "_review_row.html",
        project=project,
        row=ReviewRow(item, voters(db, [item.id]).get(item.id, [])),
        key=uuid.uuid4().hex,
        error=error,
        done=error is None,
    )


def _settings_fragment(
    request: Request, db: Session, project: Project, user: User, error: str | None = None
):
    return render(
        request,
        "_queue_settings.html",
        project=project,
        user=user,
        overlap=overlap_of(project),
        agreement=agreement(db, project),
        is_admin=user.role == Role.admin,
        can_review=can_review(user),
        error=error,
    )


@router.get("/projects/{project_id}/queue-settings")
def queue_settings(
    request: Request,
    project: Project = Depends(page_project),
    db: Session = Depends(get_db),
    user: User = Depends(page_user),
):
    """Overlap and agreement, loaded into the project page."""
    fragment_of(request, f"/projects/{project.id}")
    return _settings_fragment(request, db, project, user)


@router.post("/projects/{project_id}/overlap", dependencies=[Depends(verify_csrf)])
def change_overlap(
    request: Request,
    project: Project = Depends(page_project),  # first: a non-member gets 404
    overlap: str = Form(...),
    db: Session = Depends(get_db),
    user: User = Depends(page_admin),
):
    try:
        set_overlap(project, int(overlap) if overlap.strip().isdigit() else overlap)
    except DecisionError as err:
        db.rollback()
        return _settings_fragment(request, db, project, user, error=str(err))
    db.commit()
    return _settings_fragment(request, db, project, user)
