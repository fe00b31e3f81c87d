"""The annotator's queue."""

import uuid

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.api.deps import page_project, page_project_item
from app.core.auth import page_user, verify_csrf
from app.core.config import get_settings
from app.core.db import get_db
from app.kinds.registry import kind_context
from app.models import Item, Project, User, utcnow
from app.schemas import ANNOTATION_MAX_LENGTH
from app.services.deciders import NotAllowed
from app.services.decisions import decide, last_decision, undo
from app.services.guidelines import guidelines_of, render_guidelines
from app.services.items import item_view
from app.services.preselect import preselected_label
from app.services.progress import queue_progress
from app.services.queue import DecisionError, next_item, overlap_of, skip
from app.services.results import evidence_for
from app.web.templating import render

router = APIRouter()
NOTE_MAX = 2000
ACTION_MAX = 16  # the actions are label, skip and pass: anything longer is not one of them


def _queue_context(
    db: Session,
    project: Project,
    user: User,
    error: str | None = None,
    notice: str | None = None,
    saved: str | None = None,
) -> dict:
    """The queue fragment's context; ``saved`` is the brief confirmation of the decision just
    stored, shown for a few seconds and announced to screen readers."""
    item = next_item(db, project, user, get_settings().lease_ttl_s)
    db.commit()
    context = {
        "project": project,
        "view": None,
        "error": error,
        "notice": notice,
        "saved": saved,
        "overlap": overlap_of(project),
        "can_undo": last_decision(db, project, user) is not None,
        "undo_key": uuid.uuid4().hex,
        "progress": queue_progress(db, project, user, utcnow()),
    }
    if item is None:
        return context
    view = item_view(db, item)
    evidence = evidence_for(db, view.version.id, item.id) if view.version else []
    return {
        **context,
        "view": view,
        "kind_context": kind_context(db, project, view),
        "preselected": preselected_label(project, item, view.prediction),
        "supporters": [e for e in evidence if e.role == "supporter"],
        "opposers": [e for e in evidence if e.role == "opposer"],
        "proponents": [e for e in evidence if e.role == "proponent"],
        "idempotency_key": uuid.uuid4().hex,
    }


def apply_action(db: Session, action) -> str | None:
    """Commit the action; a refusal becomes the message shown above the next item, but a
    change nobody may make (a trusted item, never served by any queue) is a 403."""
    try:
        action()  # a twin with the same key waits on the user's lock, then is answered by key
        db.commit()
    except NotAllowed as err:
        db.rollback()
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(err)) from None
    except DecisionError as err:
        db.rollback()
        return str(err)
    except IntegrityError:
        db.rollback()
        return "a concurrent request changed the same item; send it again"
    return None


@router.get("/projects/{project_id}/queue")
def queue_page(
    request: Request,
    project: Project = Depends(page_project),
    db: Session = Depends(get_db),
    user: User = Depends(page_user),
):
    guidelines = render_guidelines(guidelines_of(project))
    context = _queue_context(db, project, user)
    return render(request, "queue.html", user=user, guidelines=guidelines, **context)


@router.post("/projects/{project_id}/queue/undo", dependencies=[Depends(verify_csrf)])
def queue_undo(
    request: Request,
    project: Project = Depends(page_project),
    idempotency_key: str = Form(..., min_length=8, max_length=100),
    db: Session = Depends(get_db),
    user: User = Depends(page_user),
):
    """Take back my last decision; the item comes back to me."""
    ttl = get_settings().lease_ttl_s
    error = apply_action(db, lambda: undo(db, project, user, idempotency_key, ttl))
    notice = None if error else "Your last decision was undone."
    return render(request, "_queue_item.html", **_queue_context(db, project, user, error, notice))


@router.post("/projects/{project_id}/queue/{item_id}", dependencies=[Depends(verify_csrf)])
def queue_decision(
    request: Request,
    project: Project = Depends(page_project),
    item: Item = Depends(page_project_item),
    action: str = Form(..., max_length=ACTION_MAX),
    label: str = Form("", max_length=ANNOTATION_MAX_LENGTH),
    note: str = Form("", max_length=NOTE_MAX),
    idempotency_key: str = Form(..., min_length=8, max_length=100),
    db: Session = Depends(get_db),
    user: User = Depends(page_user),
):
    """Confirm or correct (``action=label``), skip for later, or pass to others; answers with
    the next item."""

    def act() -> None:
        if action in ("skip", "pass"):
            skip(db, item, user, "later" if action == "skip" else "pass", idempotency_key)
        elif action == "label":
            if not label:
                raise DecisionError("label: pick one of the project's labels first")
            decide(db, project, item, user, label, idempotency_key, note.strip() or None)
        else:
            raise DecisionError(f"action: unknown action '{action}' (label, skip, pass)")

    error = apply_action(db, act)
    saved = None if error else _saved_message(action, label, item)
    context = _queue_context(db, project, user, error, saved=saved)
    return render(request, "_queue_item.html", **context)


def _saved_message(action: str, label: str, item: Item) -> str:
    """The confirmation that names what was stored, and how to take it back."""
    name = item.external_id
    if action == "label":
        return f"Saved: {label} for item {name} (undo: U)"
    return f"Skipped item {name}" if action == "skip" else f"Passed item {name} to others"
