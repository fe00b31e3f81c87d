"""The data browser: a project's items, filtered and paged; bulk relabel with a preview and a
group undo (reviewers and admins); relabel from an item's page."""

from __future__ import annotations

import json
import uuid
from typing import Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from app.api.deps import RowId, page_item, page_project
from app.api.filters import item_filter
from app.core.auth import page_user, verify_csrf
from app.core.config import get_settings
from app.core.db import MAX_ROW_ID, get_db
from app.kinds.registry import kind_context
from app.models import (
    REVIEWABLE_KINDS,
    DatasetKind,
    Item,
    ItemStatus,
    LabelGroup,
    Project,
    Role,
    User,
)
from app.schemas import ANNOTATION_MAX_LENGTH, LABEL_MAX_LENGTH
from app.services.bulk import PreviewRow, Snapshot, preview, relabel_many, undo_group
from app.services.decisions import history
from app.services.item_filters import ItemFilter
from app.services.items import BadCursor, count_items, item_view, list_items, prediction_history
from app.services.membership import NotFound, item_for
from app.services.queue import DecisionError
from app.services.results import evidence_for
from app.services.reviews import can_review, relabel
from app.services.similar import items_like
from app.web.review import NOTE_MAX, apply_action
from app.web.reviewer import page_reviewer
from app.web.templating import render

router = APIRouter()


def _browser_url(project: Project, filters: ItemFilter, **extra: str | int | None) -> str:
    params = {**filters.query_params(), **{k: str(v) for k, v in extra.items() if v is not None}}
    return f"/projects/{project.id}/items" + (f"?{urlencode(params)}" if params else "")


@router.get("/projects/{project_id}/items")
def browser_page(
    request: Request,
    order: Literal["suspicion", "id"] = "suspicion",
    cursor: str | None = Query(None, max_length=40),
    like: int | None = Query(None, ge=1, le=MAX_ROW_ID, description="items like this item"),
    filters: ItemFilter = Depends(item_filter),
    project: Project = Depends(page_project),
    db: Session = Depends(get_db),
    user: User = Depends(page_user),
):
    """Every item of the project, filtered; ``like``: the items like that one instead of
    every item, most alike first."""
    settings = get_settings()
    similar, like_item, next_cursor = None, None, None
    if like is not None:
        try:
            like_item = item_for(db, like, user)
        except NotFound as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None
        if like_item.project_id != project.id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"item {like} not found")
        similar = items_like(db, project, like_item, settings.similar_items_max, filters)
        views = [s.view for s in similar]
    else:
        try:
            views, next_cursor = list_items(
                db,
                project,
                order=order,
                limit=settings.browser_page_items,
                cursor=cursor,
                filters=filters,
            )
        except BadCursor as err:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    return render(
        request,
        "items.html",
        user=user,
        project=project,
        views=views,
        shared={s.view.item.id: s.shared for s in similar} if similar is not None else None,
        like_item=like_item,
        filters=filters,
        order=order,
        matches=count_items(db, project, filters),
        next_url=_browser_url(project, filters, order=order, cursor=next_cursor)
        if next_cursor
        else None,
        first_url=_browser_url(project, filters, order=order) if cursor else None,
        sort_urls={o: _browser_url(project, filters, order=o) for o in ("suspicion", "id")},
        export_query=urlencode(filters.query_params()),
        kinds=list(DatasetKind),
        statuses=list(ItemStatus),
        can_bulk=can_review(user),
        is_admin=user.role == Role.admin,
    )


def snapshot_token(item: Item) -> str:
    """What the preview showed of the item, carried by the confirm form: [id, label, status]."""
    return json.dumps([item.id, item.current_label, item.status])


def parse_snapshots(tokens: list[str]) -> dict[int, Snapshot]:
    """The confirmed preview's (label, status) per item, as the preview page wrote them."""
    found: dict[int, Snapshot] = {}
    for token in tokens:
        try:
            item_id, label, status = json.loads(token)
        except (ValueError, TypeError):
            item_id = label = status = None
        if not (
            isinstance(item_id, int) and isinstance(label, str | None) and isinstance(status, str)
        ):
            raise DecisionError("expected: the preview form was changed; preview again")
        found[item_id] = (label, status)
    return found


def selected_ids(item_id: list[str]) -> list[int]:
    """The checked rows' ids; anything else is an error naming the value."""
    for value in item_id:
        if not (value.isascii() and value.isdigit() and len(value) <= len(str(MAX_ROW_ID))):
            raise DecisionError(f"item_id: '{value[:20]}' is not an item id")
    return [int(value) for value in item_id]


@router.post("/projects/{project_id}/bulk/preview", dependencies=[Depends(verify_csrf)])
def bulk_preview(
    request: Request,
    item_id: list[str] = Form(default_factory=list),
    label: str = Form("", max_length=LABEL_MAX_LENGTH),
    note: str = Form("", max_length=NOTE_MAX),
    back: str = Form("", max_length=2000),
    project: Project = Depends(page_project),  # first: a non-member gets 404
    db: Session = Depends(get_db),
    user: User = Depends(page_reviewer),
):
    """What the bulk change would do to each selected item; nothing is written yet."""
    rows, error = [], None
    try:
        if not label:
            raise DecisionError("label: pick the label to set")
        rows = preview(db, project, selected_ids(item_id), label)
    except DecisionError as err:
        error = str(err)
    back = _safe_back(project, back)
    return preview_page(
        request, user, project, rows, label=label, note=note, error=error, back=back
    )


def preview_page(
    request: Request,
    user: User,
    project: Project,
    rows: list[PreviewRow],
    *,
    back: str,
    **context,
):
    """The bulk preview: each row now and after, and the confirm form carrying what it showed
    (``context``: label, note, error, and for other changes title, confirm_action,
    extra_fields)."""
    return render(
        request,
        "bulk_preview.html",
        user=user,
        project=project,
        rows=[(row, snapshot_token(row.item)) for row in rows],
        back=back,
        changing=sum(row.changes for row in rows),
        refused=sum(row.refused is not None for row in rows),
        idempotency_key=uuid.uuid4().hex,
        **context,
    )


def _safe_back(project: Project, back: str) -> str:
    """Where "back to the list" goes: the browser URL the selection came from, if it is one."""
    prefix = f"/projects/{project.id}/items"
    return back if back == prefix or back.startswith(prefix + "?") else prefix


@router.post("/projects/{project_id}/bulk", dependencies=[Depends(verify_csrf)])
def bulk_apply(
    request: Request,
    item_id: list[str] = Form(default_factory=list),
    expected: list[str] = Form(default_factory=list),
    label: str = Form(..., max_length=LABEL_MAX_LENGTH),
    note: str = Form("", max_length=NOTE_MAX),
    back: str = Form("", max_length=2000),
    idempotency_key: str = Form(..., min_length=8, max_length=100),
    project: Project = Depends(page_project),
    db: Session = Depends(get_db),
    user: User = Depends(page_reviewer),
):
    """Apply the previewed change; a double submission answers with the change already made."""
    made: list[LabelGroup] = []

    def act() -> None:
        snapshots = parse_snapshots(expected)
        made.append(
            relabel_many(
                db,
                project,
                user,
                selected_ids(item_id),
                label,
                idempotency_key,
                note.strip() or None,
                snapshots,
            )
        )

    error = apply_action(db, act)
    return group_page(request, project, user, made[0] if made else None, error, back)


def group_page(
    request: Request,
    project: Project,
    user: User,
    group: LabelGroup | None,
    error: str | None,
    back: str,
):
    return render(
        request,
        "bulk_done.html",
        user=user,
        project=project,
        group=group,
        error=error,
        back=_safe_back(project, back),
    )


@router.post("/projects/{project_id}/bulk/{group_id}/undo", dependencies=[Depends(verify_csrf)])
def bulk_undo(
    request: Request,
    group_id: RowId,
    back: str = Form("", max_length=2000),
    project: Project = Depends(page_project),
    db: Session = Depends(get_db),
    user: User = Depends(page_reviewer),
):
    made: list[LabelGroup] = []
    error = apply_action(db, lambda: made.append(undo_group(db, project, user, group_id)))
    return group_page(request, project, user, made[0] if made else None, error, back)


def may_relabel(item: Item, user: User) -> bool:
    """Whether the item page offers a relabel form: reviewers and admins on any item of the
    reviewable sets; an annotator on the pending item the queue handed them."""
    if item.dataset_kind not in REVIEWABLE_KINDS:
        return False
    return can_review(user) or (item.status == ItemStatus.pending and item.leased_by_id == user.id)


def _item_page(request: Request, db: Session, item: Item, user: User, **extra):
    view = item_view(db, item)
    evidence = evidence_for(db, view.version.id, item.id) if view.version else []
    project = db.get(Project, item.project_id)
    return render(
        request,
        "item.html",
        user=user,
        project=project,
        view=view,
        kind_context=kind_context(db, project, view),
        evidence=evidence,
        events=history(db, item),
        versions=prediction_history(db, item),
        may_relabel=may_relabel(item, user),
        idempotency_key=uuid.uuid4().hex,
        **extra,
    )


@router.get("/items/{item_id}")
def item_page(
    request: Request,
    saved: bool = False,
    item: Item = Depends(page_item),
    db: Session = Depends(get_db),
    user: User = Depends(page_user),
):
    return _item_page(request, db, item, user, saved=saved)


@router.post("/items/{item_id}/label", dependencies=[Depends(verify_csrf)])
def item_relabel(
    request: Request,
    label: str = Form("", max_length=ANNOTATION_MAX_LENGTH),
    note: str = Form("", max_length=NOTE_MAX),
    idempotency_key: str = Form(..., min_length=8, max_length=100),
    item: Item = Depends(page_item),
    db: Session = Depends(get_db),
    user: User = Depends(page_user),
):
    """Relabel from the item page: the same decision as the API's. Saved, back to the page
    (its history shows the new event); refused, the page again with the reason."""
    project = db.get(Project, item.project_id)

    def act() -> None:
        if not label:
            raise DecisionError("label: pick one of the project's labels first")
        relabel(db, project, item, user, label, idempotency_key, note.strip() or None)

    error = apply_action(db, act)
    if error:
        db.refresh(item)
        return _item_page(request, db, item, user, error=error)
    return RedirectResponse(f"/items/{item.id}?saved=true", status_code=status.HTTP_303_SEE_OTHER)
