"""Lookups shared by the API routes and the pages: a row by its path id, only when the caller
may see its project (admins: every project; others: the ones they are members of). A row they
may not see is a 404 with the same text as a missing one, so its existence is not revealed."""

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Path, status
from sqlalchemy.orm import Session

from app.core.auth import api_user, page_user
from app.core.db import MAX_ROW_ID, get_db
from app.models import Item, Job, Project, User
from app.services.membership import NotFound, item_for, job_for, project_for

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
Row = TypeVar("Row")


def visible_or_404(lookup: Callable[[Session, int, User], Row], db: Session, key: int, user: User):
    """``lookup`` (a membership lookup) as an HTTP answer: not found or not visible is a 404."""
    try:
        return lookup(db, key, user)
    except NotFound as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None


def get_project(
    project_id: RowId, db: Session = Depends(get_db), user: User = Depends(api_user)
) -> Project:
    return visible_or_404(project_for, db, project_id, user)


def get_item(item_id: RowId, db: Session = Depends(get_db), user: User = Depends(api_user)) -> Item:
    return visible_or_404(item_for, db, item_id, user)


def get_job(job_id: RowId, db: Session = Depends(get_db), user: User = Depends(api_user)) -> Job:
    return visible_or_404(job_for, db, job_id, user)


def page_project(
    project_id: RowId, db: Session = Depends(get_db), user: User = Depends(page_user)
) -> Project:
    """``get_project`` for the pages (a login session instead of a bearer token)."""
    return visible_or_404(project_for, db, project_id, user)


def page_item(
    item_id: RowId, db: Session = Depends(get_db), user: User = Depends(page_user)
) -> Item:
    return visible_or_404(item_for, db, item_id, user)


def page_project_item(
    project: Project = Depends(page_project), item: Item = Depends(page_item)
) -> Item:
    """The item of a page path naming both: an item of another project is not found here."""
    if item.project_id != project.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"item {item.id} not found")
    return item
