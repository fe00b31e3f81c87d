"""Lookups shared by the API routes."""

from typing import Annotated

from fastapi import Depends, HTTPException, Path, status
from sqlalchemy.orm import Session

from app.db import MAX_ROW_ID, get_db
from app.models import Item, Project

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


def get_project(project_id: RowId, db: Session = Depends(get_db)) -> Project:
    project = db.get(Project, project_id)
    if project is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
    return project


def get_item(item_id: RowId, db: Session = Depends(get_db)) -> Item:
    item = db.get(Item, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"item {item_id} not found")
    return item
