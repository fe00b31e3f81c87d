"""Project members over the API (admins): who may see and work on a project."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Response, status
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from app.api.deps import RowId, get_project
from app.api.errors import errors
from app.core.auth import api_admin
from app.core.db import MAX_ROW_ID, get_db
from app.models import Project, Role, User
from app.schemas import plain_str
from app.services.membership import (
    NotFound,
    add_member,
    find_user,
    member_since,
    members_of,
    remove_member,
)

router = APIRouter(tags=["members"])
Username = plain_str(min_length=1, max_length=80)


class MemberAdd(BaseModel):
    username: Username | None = None
    user_id: int | None = Field(default=None, ge=1, le=MAX_ROW_ID)

    @model_validator(mode="after")
    def _one_of(self) -> MemberAdd:
        if (self.username is None) == (self.user_id is None):
            raise ValueError("send either username or user_id")
        return self


class MemberOut(BaseModel):
    user_id: int
    username: str
    role: Role
    added_at: datetime | None


def _out(db: Session, project: Project, user: User) -> MemberOut:
    added = member_since(db, project, user)
    return MemberOut(user_id=user.id, username=user.username, role=user.role, added_at=added)


@router.get(
    "/projects/{project_id}/members",
    response_model=list[MemberOut],
    responses=errors(401, 403, 404, 422),
)
def list_members(
    project: Project = Depends(get_project),
    db: Session = Depends(get_db),
    _: User = Depends(api_admin),
) -> list[MemberOut]:
    """The project's members by name (admins see every project without being members)."""
    return [_out(db, project, user) for user in members_of(db, project)]


@router.post(
    "/projects/{project_id}/members",
    response_model=MemberOut,
    responses=errors(400, 401, 403, 404, 422),
)
def add_project_member(
    body: MemberAdd,
    project: Project = Depends(get_project),
    db: Session = Depends(get_db),
    admin: User = Depends(api_admin),
) -> MemberOut:
    """Add a user by name or id; adding a member again changes nothing."""
    try:
        user = find_user(db, username=body.username, user_id=body.user_id)
    except NotFound as err:
        field = "username" if body.username is not None else "user_id"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{field}: {err}") from None
    add_member(db, project, user, added_by=admin)
    db.commit()
    return _out(db, project, user)


@router.delete(
    "/projects/{project_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404, 422),
)
def remove_project_member(
    user_id: RowId,
    project: Project = Depends(get_project),
    db: Session = Depends(get_db),
    _: User = Depends(api_admin),
) -> Response:
    """End the member's access at once; the items they hold go back to the queue."""
    try:
        user = find_user(db, user_id=user_id)
    except NotFound:
        user = None
    if user is None or not remove_member(db, project, user):
        db.rollback()
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"user {user_id} is not a member of project {project.id}"
        )
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
