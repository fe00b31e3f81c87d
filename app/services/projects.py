"""Projects and their settings (which ranking they use)."""

from __future__ import annotations

import unicodedata

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.kinds import TaskKind
from app.kinds.estimators import ESTIMATORS
from app.kinds.registry import KINDS
from app.models import Dataset, Item, ItemStatus, Job, Project, User
from app.services.membership import visible_projects


class UnknownEstimator(ValueError):
    pass


def _checked(estimator: str, task_kind: str = TaskKind.text_classification) -> str:
    """A known estimator for the project's kind of data."""
    known = [name for name, info in ESTIMATORS.items() if info.task == task_kind]
    if estimator not in known:
        raise UnknownEstimator(f"unknown estimator '{estimator}' (known: {', '.join(known)})")
    return estimator


def _default_estimator(task_kind: TaskKind) -> str:
    return KINDS[task_kind].default_estimator or get_settings().default_estimator


class BadProject(ValueError):
    """A project name or label set that cannot be stored; the message says which."""


class ProjectNameTaken(BadProject):
    """Project names are unique (index uq_projects_name): a 409, not an IntegrityError."""


INVISIBLE = ("Cc", "Cf", "Zs", "Zl", "Zp")  # controls, format (zero-width) and separators


def visible(text: str) -> str:
    """``text`` without surrounding whitespace, or '' when none of it would show on a page
    (a zero-width space is not whitespace to ``str.strip``, but a name of it looks blank)."""
    text = text.strip()
    return "" if all(unicodedata.category(c) in INVISIBLE for c in text) else text


def checked_name(name: str) -> str:
    """The name without surrounding spaces; a blank one is refused (it shows as nothing)."""
    name = visible(name)
    if not name:
        raise BadProject("name: a project needs a name (not only spaces)")
    return name


def checked_labels(labels: list[str], minimum: int = 2, maximum: int | None = None) -> list[str]:
    """At least ``minimum`` and at most ``maximum`` (the kind's) distinct non-blank labels, at
    most ASSAY_MAX_LABELS (every page and the queue's keyboard list them all)."""
    limit = get_settings().max_labels
    if len(labels) > limit:
        raise BadProject(f"labels: at most {limit} (ASSAY_MAX_LABELS), got {len(labels)}")
    cleaned = [visible(label) for label in labels]
    if any(not label for label in cleaned) or len(set(cleaned)) != len(cleaned):
        raise BadProject("labels: must be non-empty and distinct")
    if len(cleaned) < minimum:
        raise BadProject(f"labels: a project of this kind needs at least {minimum}")
    if maximum is not None and len(cleaned) > maximum:
        raise BadProject(f"labels: a project of this kind takes at most {maximum}")
    return cleaned


def _name_taken(session: Session, name: str) -> ProjectNameTaken | None:
    """Names differing only in case are one name to the people choosing between them."""
    existing = session.scalar(select(Project.name).where(func.lower(Project.name) == name.lower()))
    if existing is None:
        return None
    return ProjectNameTaken(f"name: a project named '{existing}' already exists")


def create_project(
    session: Session,
    name: str,
    labels: list[str],
    estimator: str | None = None,
    task_kind: TaskKind = TaskKind.text_classification,
) -> Project:
    """A new project; ``BadProject`` (``ProjectNameTaken``) says what is wrong. Two racing
    creators are told apart by the unique index; the loser's session is rolled back, so call
    this before other changes."""
    name, labels = (
        checked_name(name),
        checked_labels(labels, KINDS[task_kind].min_labels, KINDS[task_kind].max_labels),
    )
    if taken := _name_taken(session, name):
        raise taken
    project = Project(
        name=name,
        task_kind=task_kind,
        labels=labels,
        settings={"estimator": _checked(estimator or _default_estimator(task_kind), task_kind)},
    )
    session.add(project)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        if taken := _name_taken(session, name):
            raise taken from None
        raise
    return project


def set_estimator(project: Project, estimator: str) -> None:
    """Applies from the next training job on; earlier model versions keep their own."""
    project.settings = {**project.settings, "estimator": _checked(estimator, project.task_kind)}


def estimator_of(project: Project) -> str:
    return project.settings.get("estimator") or get_settings().default_estimator


def list_projects(session: Session, user: User) -> list[Project]:
    """The projects ``user`` may see: all for an admin, else the ones they are a member of."""
    return list(session.scalars(select(Project).where(visible_projects(user)).order_by(Project.id)))


def list_datasets(session: Session, project: Project) -> list[Dataset]:
    return list(
        session.scalars(
            select(Dataset).where(Dataset.project_id == project.id).order_by(Dataset.id)
        )
    )


def recent_jobs(session: Session, project: Project, limit: int) -> list[Job]:
    return list(
        session.scalars(
            select(Job).where(Job.project_id == project.id).order_by(Job.id.desc()).limit(limit)
        )
    )


def pending_count(session: Session, project: Project) -> int:
    return session.scalar(
        select(func.count())
        .select_from(Item)
        .where(Item.project_id == project.id, Item.status == ItemStatus.pending)
    )
