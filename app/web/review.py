"""The annotator's queue and the item page."""

import uuid

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth import page_user, verify_csrf
from app.config import get_settings
from app.db import get_db
from app.models import Item, Project, User
from app.services.items import item_view
from app.services.queue import DecisionError, decide, history, next_item, skip
from app.services.results import evidence_for
from app.web.templating import render

router = APIRouter()


def _get(db: Session, model, key: int, what: str):
    row = db.get(model, key)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{what} {key} not found")
    return row


def _queue_context(db: Session, project: Project, user: User, error: str | None = None) -> dict:
    item = next_item(db, project, user, get_settings().lease_ttl_s)
    db.commit()
    if item is None:
        return {"project": project, "view": None, "evidence": [], "error": error}
    view = item_view(db, item)
    evidence = evidence_for(db, view.version.id, item.id) if view.version else []
    return {
        "project": project,
        "view": view,
        "supporters": [e for e in evidence if e.role == "supporter"],
        "opposers": [e for e in evidence if e.role == "opposer"],
        "proponents": [e for e in evidence if e.role == "proponent"],
        "idempotency_key": uuid.uuid4().hex,
        "error": error,
    }


@router.get("/projects/{project_id}/queue")
def queue_page(
    request: Request,
    project_id: int,
    db: Session = Depends(get_db),
    user: User = Depends(page_user),
):
    project = _get(db, Project, project_id, "project")

    return render(request, "queue.html", user=user, **_queue_context(db, project, user))


@router.post("/projects/{project_id}/queue/{item_id}", dependencies=[Depends(verify_csrf)])
def queue_decision(
    request: Request,
    project_id: int,
    item_id: int,
    action: str = Form(...),
    label: str = Form(""),
    idempotency_key: str = Form(...),
    db: Session = Depends(get_db),
    user: User = Depends(page_user),
):
    """Confirm or correct (``action=label``) or skip; answers with the next item."""

    project = _get(db, Project, project_id, "project")
    item = _get(db, Item, item_id, "item")
    error = None
    try:
        if action == "skip":
            skip(db, item, user)
        elif action == "label":
            decide(db, project, item, user, label, idempotency_key)
        else:
            raise DecisionError(f"unknown action '{action}'")
        db.commit()
    except DecisionError as err:
        db.rollback()
        error = str(err)
    except IntegrityError:
        db.rollback()  # the same submission arrived twice at once: the first one counts
    return render(request, "_queue_item.html", **_queue_context(db, project, user, error))


@router.get("/items/{item_id}")
def item_page(
    request: Request, item_id: int, db: Session = Depends(get_db), user: User = Depends(page_user)
):

    item = _get(db, Item, item_id, "item")
    view = item_view(db, item)
    evidence = evidence_for(db, view.version.id, item.id) if view.version else []
    return render(
        request,
        "item.html",
        user=user,
        project=db.get(Project, item.project_id),
        view=view,
        evidence=evidence,
        events=history(db, item),
    )
