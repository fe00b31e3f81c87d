"""The project page's members section: admins add a member by name or remove one."""

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from app.api.deps import RowId, page_project
from app.core.auth import page_admin, verify_csrf
from app.core.db import get_db
from app.models import Project, User
from app.services.membership import NotFound, add_member, find_user, remove_member
from app.web.projects import render_project_page

router = APIRouter()


def _back(project: Project) -> RedirectResponse:
    return RedirectResponse(f"/projects/{project.id}#members", status_code=303)


@router.post("/projects/{project_id}/members", dependencies=[Depends(verify_csrf)])
def add_project_member(
    request: Request,
    project: Project = Depends(page_project),  # first: a non-member gets 404
    username: str = Form(..., max_length=200),
    db: Session = Depends(get_db),
    user: User = Depends(page_admin),
):
    try:
        member = find_user(db, username=username.strip())
    except NotFound as err:
        message = f"username: {err}"
        return render_project_page(
            request, db, user, project, members_error=message, status_code=422
        )
    add_member(db, project, member, added_by=user)
    db.commit()
    return _back(project)


@router.post("/projects/{project_id}/members/{user_id}/remove", dependencies=[Depends(verify_csrf)])
def remove_project_member(
    user_id: RowId,
    project: Project = Depends(page_project),
    db: Session = Depends(get_db),
    _: User = Depends(page_admin),
):
    """Ends the member's access at once and gives back the items they hold."""
    try:
        member = find_user(db, user_id=user_id)
    except NotFound:
        return _back(project)  # nothing to remove
    remove_member(db, project, member)
    db.commit()
    return _back(project)
