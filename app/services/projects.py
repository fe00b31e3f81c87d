"""Projects and their settings (which ranking they use)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.config import get_settings
from app.estimators import ESTIMATORS
from app.models import Project


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
