"""Systematic span errors, fixed a group at a time: the newest model's groups, a preview of
retyping (or removing) a group's spans in every sentence, and its confirmation as one bulk
change that can be undone as a whole (``bulk_done.html``'s undo)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy.orm import Session

from app.api.deps import page_project
from app.core.auth import verify_csrf
from app.core.db import get_db
from app.kinds import TaskKind
from app.kinds.sequence_tagging.annotation import NO_ENTITIES
from app.models import LabelGroup, Project, User
from app.schemas import LABEL_MAX_LENGTH
from app.services.bulk import preview, relabel_many
from app.services.queue import DecisionError
from app.services.span_groups import describe_retype, parse_members, retype, span_groups
from app.web.browser import group_page, parse_snapshots, preview_page
from app.web.review import NOTE_MAX, apply_action
from app.web.reviewer import page_reviewer
from app.web.templating import render

router = APIRouter()
SPAN_MAX = 40  # "item:start:end"


def _checked_types(project: Project, from_type: str, to_type: str) -> None:
    if project.task_kind != TaskKind.sequence_tagging:
        raise DecisionError("span groups exist in sequence-tagging projects only")
    if from_type not in project.labels:
        raise DecisionError(f"from_type: '{from_type[:40]}' is not one of the project's types")
    if to_type != NO_ENTITIES and to_type not in project.labels:
        raise DecisionError(f"label: '{to_type[:40]}' is not one of the project's types, or O")
    if to_type == from_type:
        raise DecisionError("label: choose a type other than the spans' own")


@router.get("/projects/{project_id}/span-groups")
def groups_page(
    request: Request,
    project: Project = Depends(page_project),
    db: Session = Depends(get_db),
    user: User = Depends(page_reviewer),
):
    return render(
        request, "span_groups.html", user=user, project=project, groups=span_groups(db, project)
    )


@router.post("/projects/{project_id}/span-groups/preview", dependencies=[Depends(verify_csrf)])
def group_preview(
    request: Request,
    span: list[str] = Form(default_factory=list),
    from_type: str = Form(..., max_length=LABEL_MAX_LENGTH),
    label: str = Form(..., max_length=LABEL_MAX_LENGTH),
    surface: str = Form("", max_length=2000),
    note: str = Form("", max_length=NOTE_MAX),
    project: Project = Depends(page_project),
    db: Session = Depends(get_db),
    user: User = Depends(page_reviewer),
):
    """Each sentence now and after the group's spans are retyped; nothing is written yet."""
    rows, error = [], None
    try:
        _checked_types(project, from_type, label)
        members = parse_members(s[:SPAN_MAX] for s in span)
        rows = preview(db, project, list(members), label, retype(members, from_type, label))
    except DecisionError as err:
        error = str(err)
    fields = [("from_type", from_type), ("surface", surface), *(("span", s) for s in span)]
    return preview_page(
        request,
        user,
        project,
        rows,
        label=label,
        title=describe_retype(surface, from_type, label),
        note=note,
        error=error,
        back=f"/projects/{project.id}/span-groups",
        confirm_action=f"/projects/{project.id}/span-groups/apply",
        extra_fields=fields,
    )


@router.post("/projects/{project_id}/span-groups/apply", dependencies=[Depends(verify_csrf)])
def group_apply(
    request: Request,
    span: list[str] = Form(default_factory=list),
    expected: list[str] = Form(default_factory=list),
    from_type: str = Form(..., max_length=LABEL_MAX_LENGTH),
    label: str = Form(..., max_length=LABEL_MAX_LENGTH),
    surface: str = Form("", max_length=2000),
    note: str = Form("", max_length=NOTE_MAX),
    idempotency_key: str = Form(..., min_length=8, max_length=100),
    project: Project = Depends(page_project),
    db: Session = Depends(get_db),
    user: User = Depends(page_reviewer),
):
    """Apply the previewed group change (all or nothing; the same submission twice changes
    nothing more)."""
    made: list[LabelGroup] = []

    def act() -> None:
        _checked_types(project, from_type, label)
        members = parse_members(s[:SPAN_MAX] for s in span)
        made.append(
            relabel_many(
                db,
                project,
                user,
                list(members),
                describe_retype(surface, from_type, label),
                idempotency_key,
                note.strip() or None,
                parse_snapshots(expected),
                change=retype(members, from_type, label),
            )
        )

    error = apply_action(db, act)
    back = f"/projects/{project.id}/span-groups"
    return group_page(request, project, user, made[0] if made else None, error, back)
