"""Bulk relabel and "items like this" over the API: the same changes as the data browser's.

A bulk change is previewed with ``dry_run`` (nothing is written), then applied with the
preview's snapshot in ``expected`` so that an item that moved on in between refuses the change
instead of being overwritten unseen; ``/undo`` takes the whole change back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.api.deps import RowId, get_item, get_project
from app.api.errors import errors
from app.api.filters import item_filter
from app.api.items import commit_action
from app.core.auth import api_user
from app.core.config import get_settings
from app.core.db import MAX_ROW_ID, get_db
from app.models import Item, ItemStatus, LabelGroup, Project, User
from app.schemas import IdempotencyKey, ItemOut, Label, plain_str
from app.services.bulk import PreviewRow, group_items, preview, relabel_many, undo_group
from app.services.item_filters import ItemFilter
from app.services.queue import DecisionError
from app.services.reviews import can_review
from app.services.similar import items_like

router = APIRouter(tags=["bulk"])
NOTE_MAX = 2000
Note = plain_str(max_length=NOTE_MAX)


def api_reviewer(user: User = Depends(api_user)) -> User:
    if not can_review(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "reviewer role required")
    return user


class ExpectedState(BaseModel):
    item_id: int = Field(ge=1, le=MAX_ROW_ID)
    current_label: str | None
    status: ItemStatus


class BulkRelabel(BaseModel):
    item_ids: list[Annotated[int, Field(ge=1, le=MAX_ROW_ID)]] = Field(
        min_length=1, description="at most ASSAY_BULK_MAX_ITEMS"
    )
    label: Label
    idempotency_key: IdempotencyKey
    note: Note | None = None
    dry_run: bool = Field(default=False, description="preview only: nothing is written")
    expected: list[ExpectedState] | None = Field(
        default=None,
        description="each item's label and status as the preview showed them; an item that "
        "differs now refuses the whole change (409)",
    )


class BulkRow(BaseModel):
    item_id: int
    external_id: str
    current_label: str | None
    status: ItemStatus
    changes: bool = Field(description="false: it already has the label, approved")
    refused: str | None = Field(description="why it cannot be changed here (trusted sets)")


class BulkChangeOut(BaseModel):
    group_id: int | None = Field(description="the change's id (null for a dry run)")
    label: str
    changed: int = Field(description="items the change sets (or would set)")
    items: list[BulkRow]
    undone_at: datetime | None = None


class SimilarOut(BaseModel):
    item: ItemOut
    shared_evidence: int = Field(description="training items in both items' evidence")


def _rows(rows: list[PreviewRow]) -> list[BulkRow]:
    return [
        BulkRow(
            item_id=row.item.id,
            external_id=row.item.external_id,
            current_label=row.item.current_label,
            status=row.item.status,
            changes=row.changes,
            refused=row.refused,
        )
        for row in rows
    ]


def _group_out(group: LabelGroup, rows: list[BulkRow]) -> BulkChangeOut:
    return BulkChangeOut(
        group_id=group.id,
        label=group.label,
        changed=group.item_count,
        items=rows,
        undone_at=group.undone_at,
    )


@router.post(
    "/projects/{project_id}/relabel",
    response_model=BulkChangeOut,
    responses=errors(400, 401, 403, 404, 409, 422),
)
def relabel_items(
    body: BulkRelabel,
    project: Project = Depends(get_project),
    db: Session = Depends(get_db),
    user: User = Depends(api_reviewer),
) -> BulkChangeOut:
    """Set one label on several items as a reviewer's decision (reviewers and admins): one
    label event per changed item, undone together. The same idempotency key again returns the
    change it made."""
    if body.dry_run:
        try:
            rows = preview(db, project, body.item_ids, body.label)
        except DecisionError as err:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
        changed = sum(row.changes for row in rows)
        return BulkChangeOut(group_id=None, label=body.label, changed=changed, items=_rows(rows))
    expected = (
        {e.item_id: (e.current_label, e.status) for e in body.expected}
        if body.expected is not None
        else None
    )
    try:  # each row as it was before the change, so ``changes`` says what the change did
        before = _rows(preview(db, project, body.item_ids, body.label))
    except DecisionError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    group = commit_action(
        db,
        lambda: relabel_many(
            db, project, user, body.item_ids, body.label, body.idempotency_key, body.note, expected
        ),
    )
    return _group_out(group, before)


@router.post(
    "/projects/{project_id}/relabel/{group_id}/undo",
    response_model=BulkChangeOut,
    responses=errors(401, 403, 404, 409, 422),
)
def undo_relabel(
    group_id: RowId,
    project: Project = Depends(get_project),
    db: Session = Depends(get_db),
    user: User = Depends(api_reviewer),
) -> BulkChangeOut:
    """Take a bulk change back (its author or an admin): every item returns to its earlier
    label and status. Refused as a whole (409) when an item changed since; undoing it again
    changes nothing. ``items``: the change's items as they are after the undo."""
    group = commit_action(db, lambda: undo_group(db, project, user, group_id))
    restored = [
        PreviewRow(item, item.current_label or "", changes=True, refused=None)
        for item in group_items(db, group)
    ]
    return _group_out(group, _rows(restored))


@router.get(
    "/items/{item_id}/similar",
    response_model=list[SimilarOut],
    responses=errors(401, 404, 422),
)
def similar_items(
    limit: int | None = Query(
        None,
        ge=1,
        le=get_settings().similar_items_max,
        description="at most ASSAY_SIMILAR_ITEMS_MAX (the default)",
    ),
    filters: ItemFilter = Depends(item_filter),
    item: Item = Depends(get_item),
    db: Session = Depends(get_db),
    _: User = Depends(api_user),
) -> list[SimilarOut]:
    """Items like this one: those whose evidence (under the newest model) shares the most
    training items with this one's, most shared first; the item list's filters apply."""
    project = db.get(Project, item.project_id)
    found = items_like(db, project, item, limit or get_settings().similar_items_max, filters)
    return [SimilarOut(item=s.view.as_dict(), shared_evidence=s.shared) for s in found]
