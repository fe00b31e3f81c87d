"""The shared queue over the API: next item under a lease, skip, undo, review, agreement.

Every state-changing call takes an ``idempotency_key``: sent twice, it changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.api.deps import get_item, get_project
from app.api.errors import errors
from app.api.items import commit_action, item_detail
from app.core.auth import api_user
from app.core.config import get_settings
from app.core.db import get_db
from app.models import Item, Project, User
from app.schemas import Annotation, IdempotencyKey, ItemDetail
from app.services.agreement import agreement
from app.services.decisions import undo
from app.services.queue import SkipMode, next_item, skip
from app.services.reviews import can_review, review

router = APIRouter(tags=["queue"])


class SkipRequest(BaseModel):
    mode: SkipMode = Field(
        description="later: back of my queue; pass: never to me again (others keep it)"
    )
    idempotency_key: IdempotencyKey


class UndoRequest(BaseModel):
    idempotency_key: IdempotencyKey


class ReviewRequest(BaseModel):
    label: Annotation | None = Field(
        default=None, description="override with this label; none: approve"
    )
    idempotency_key: IdempotencyKey


class SkipOut(BaseModel):
    item_id: int
    state: SkipMode
    duplicate: bool = Field(description="the same idempotency key was sent before: no change")


class QueueItemOut(ItemDetail):
    leased_until: datetime = Field(description="the item is yours until then (UTC)")


class PairKappaOut(BaseModel):
    a: str
    b: str
    items: int
    kappa: float | None


class AgreementOut(BaseModel):
    overlap_items: int = Field(description="items labelled by at least two annotators")
    annotators: int
    krippendorff_alpha: float | None = Field(description="nominal; None when undefined")
    cohen_kappa: list[PairKappaOut] = Field(description="per pair, on the items both labelled")


@router.post(
    "/projects/{project_id}/queue/next",
    response_model=QueueItemOut,
    responses={
        204: {"description": "nothing left for you in this queue"},
        **errors(401, 404, 422, 503),
    },
)
def take_next(
    project: Project = Depends(get_project),
    db: Session = Depends(get_db),
    user: User = Depends(api_user),
):
    """The item you hold, or the next most suspicious free one, leased to you."""
    item = next_item(db, project, user, get_settings().lease_ttl_s)
    if item is None:
        db.commit()  # leases given back
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    detail = item_detail(db, item)  # same transaction: one connection checkout per request
    db.commit()
    return QueueItemOut(**detail.model_dump(), leased_until=item.lease_expires_at)


@router.post(
    "/items/{item_id}/skip",
    response_model=SkipOut,
    responses=errors(400, 401, 403, 404, 409, 422),
)
def skip_item(
    body: SkipRequest,
    item: Item = Depends(get_item),
    db: Session = Depends(get_db),
    user: User = Depends(api_user),
) -> SkipOut:
    changed: list[bool] = []
    commit_action(db, lambda: changed.append(skip(db, item, user, body.mode, body.idempotency_key)))
    return SkipOut(item_id=item.id, state=body.mode, duplicate=changed != [True])


@router.post(
    "/projects/{project_id}/undo",
    response_model=ItemDetail,
    responses=errors(400, 401, 404, 409, 422),
)
def undo_last(
    body: UndoRequest,
    project: Project = Depends(get_project),
    db: Session = Depends(get_db),
    user: User = Depends(api_user),
) -> ItemDetail:
    """Undo your newest decision in this project; the item comes back to you."""
    outcome = []
    settings = get_settings()
    commit_action(
        db,
        lambda: outcome.append(undo(db, project, user, body.idempotency_key, settings.lease_ttl_s)),
    )
    # A twin undo sent at the same moment waited on the user's lock and answers this one's event.
    return item_detail(db, db.get(Item, outcome[0].event.item_id))


@router.post(
    "/items/{item_id}/review",
    response_model=ItemDetail,
    responses=errors(400, 401, 403, 404, 409, 422),
)
def review_item(
    body: ReviewRequest,
    item: Item = Depends(get_item),
    db: Session = Depends(get_db),
    user: User = Depends(api_user),
) -> ItemDetail:
    """Approve an item's decision, override it, or settle a tie (reviewers and admins)."""
    if not can_review(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "reviewer role required")
    project = db.get(Project, item.project_id)
    commit_action(db, lambda: review(db, project, item, user, body.idempotency_key, body.label))
    db.refresh(item)
    return item_detail(db, item)


@router.get(
    "/projects/{project_id}/agreement",
    response_model=AgreementOut,
    responses=errors(401, 404, 422),
)
def read_agreement(
    project: Project = Depends(get_project),
    db: Session = Depends(get_db),
    _: User = Depends(api_user),
) -> AgreementOut:
    found = agreement(db, project)
    return AgreementOut(
        overlap_items=found.items,
        annotators=found.annotators,
        krippendorff_alpha=found.alpha,
        cohen_kappa=[PairKappaOut(**pair.__dict__) for pair in found.pairs],
    )
