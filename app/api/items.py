"""Items with scores, page by page; one item with its evidence; label decisions."""

from collections.abc import Callable
from typing import Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.api.deps import get_item, get_project
from app.api.errors import errors
from app.api.filters import item_filter
from app.core.auth import api_user
from app.core.config import get_settings
from app.core.db import get_db
from app.models import Item, Project, User
from app.schemas import ItemDetail, ItemPage, LabelDecision, LabelEventOut
from app.services.deciders import NotAllowed
from app.services.decisions import history
from app.services.item_filters import ItemFilter
from app.services.items import BadCursor, item_view, list_items
from app.services.queue import DecisionError, StaleAction
from app.services.results import evidence_for
from app.services.reviews import relabel

router = APIRouter(tags=["items"])
Done = TypeVar("Done")  # what the committed action returns


@router.get(
    "/projects/{project_id}/items",
    name="list_items",  # the operation id; the function name is the service's
    response_model=ItemPage,
    responses=errors(401, 404, 422),
)
def read_items(
    order: Literal["suspicion", "id"] = "suspicion",
    limit: int = Query(  # the maximum is read once, when the route is defined: it is declared
        50, ge=1, le=get_settings().page_limit_max, description="at most ASSAY_PAGE_LIMIT_MAX"
    ),
    cursor: str | None = None,
    filters: ItemFilter = Depends(item_filter),
    project: Project = Depends(get_project),
    db: Session = Depends(get_db),
    _: User = Depends(api_user),
) -> ItemPage:
    """Items with their newest prediction and scores, filtered as the data browser filters;
    ``next_cursor`` fetches the next page (send the same filters with it)."""
    try:
        views, next_cursor = list_items(
            db, project, order=order, limit=limit, cursor=cursor, filters=filters
        )
    except BadCursor as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    return ItemPage(items=[v.as_dict() for v in views], next_cursor=next_cursor)


def item_detail(db: Session, item: Item) -> ItemDetail:
    view = item_view(db, item)
    evidence = evidence_for(db, view.version.id, item.id) if view.version else []
    return ItemDetail(
        **view.as_dict(),
        evidence=[e.__dict__ for e in evidence],
        history=[LabelEventOut.model_validate(e) for e in history(db, item)],
    )


def commit_action(db: Session, action: Callable[[], Done]) -> Done:
    """Commit ``action``; bad input is a 422 naming the problem, a stale one (or an item the
    annotator does not hold) a 409, a change nobody may make (a trusted item) a 403. A keyed
    action's twin (same user, same key) cannot race it: both take the user's lock
    (``queue.lock_user``) before looking the key up."""
    try:
        done = action()
        db.commit()
    except NotAllowed as err:
        db.rollback()
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(err)) from None
    except StaleAction as err:
        db.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    except DecisionError as err:
        db.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    except IntegrityError:
        db.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT, "a concurrent request changed the same rows; send it again"
        ) from None
    return done


@router.get("/items/{item_id}", response_model=ItemDetail, responses=errors(401, 404, 422))
def read_item(
    item: Item = Depends(get_item), db: Session = Depends(get_db), _: User = Depends(api_user)
) -> ItemDetail:
    return item_detail(db, item)


@router.post(
    "/items/{item_id}/label",
    response_model=ItemDetail,
    responses=errors(400, 401, 403, 404, 409, 422),
)
def label_item(
    body: LabelDecision,
    item: Item = Depends(get_item),
    db: Session = Depends(get_db),
    user: User = Depends(api_user),
) -> ItemDetail:
    """Label a pending item (a vote when the project's overlap is above 1); on a decided
    item reviewers and admins override. Repeating the same idempotency key changes nothing."""
    project = db.get(Project, item.project_id)
    # the session keeps the item as committed: no reload needed
    commit_action(db, lambda: relabel(db, project, item, user, body.label, body.idempotency_key))
    return item_detail(db, item)
