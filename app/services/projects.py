"""Projects and their settings (which ranking they use)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.estimators import ESTIMATORS
from app.models import Dataset, Item, ItemStatus, Job, Project, User
from app.services.membership import visible_projects


class UnknownEstimator(ValueError):
    pass


def _checked(estimator: str) -> str:
    if estimator not in ESTIMATORS:
        raise UnknownEstimator(f"unknown estimator '{estimator}' (known: {', '.join(ESTIMATORS)})")
    return estimator


def create_project(
    session: Session, name: str, labels: list[str], estimator: str | None = None
) -> Project:
    project = Project(
        name=name,
        labels=labels,
        settings={"estimator": _checked(estimator or get_settings().default_estimator)},
    )
    session.add(project)
    session.flush()
    return project


def set_estimator(project: Project, estimator: str) -> None:
    """Applies from the next training job on; earlier model versions keep their own."""
    project.settings = {**project.settings, "estimator": _checked(estimator)}


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
