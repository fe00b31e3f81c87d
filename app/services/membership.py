"""Project membership: who may see and work on which project.

Admins see every project without a membership row; every other user sees only the projects
they were added to. A project someone may not see is reported exactly like a missing one, so
its existence is not revealed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, delete, select, true
from sqlalchemy.orm import Session

from app.models import Item, Job, Project, ProjectMember, Role, User
from app.services.queue import release


class NotFound(LookupError):
    """A row that does not exist, or that this user may not see: the same 404 either way."""


def sees_everything(user: User) -> bool:
    return user.role == Role.admin


def visible_projects(user: User) -> ColumnElement[bool]:
    """A filter on ``Project`` (or any ``project_id`` column via ``member_of``) for lists."""
    return member_of(Project.id, user)


def member_of(project_id: ColumnElement[int], user: User) -> ColumnElement[bool]:
    """True for the rows whose ``project_id`` the user may see."""
    if sees_everything(user):
        return true()
    return project_id.in_(select(ProjectMember.project_id).where(ProjectMember.user_id == user.id))


def is_member(session: Session, project_id: int, user: User) -> bool:
    """May ``user`` see the project (admins: always)?"""
    if sees_everything(user):
        return True
    return session.get(ProjectMember, (project_id, user.id)) is not None


def project_for(session: Session, project_id: int, user: User) -> Project:
    """The project, if it exists and ``user`` may see it."""
    project = session.get(Project, project_id)
    if project is None or not is_member(session, project.id, user):
        raise NotFound(f"project {project_id} not found")
    return project


def item_for(session: Session, item_id: int, user: User) -> Item:
    """The item, if it exists and ``user`` may see its project."""
    item = session.get(Item, item_id)
    if item is None or not is_member(session, item.project_id, user):
        raise NotFound(f"item {item_id} not found")
    return item


def job_for(session: Session, job_id: int, user: User) -> Job:
    """The job, if it exists and ``user`` may see its project."""
    job = session.get(Job, job_id)
    if job is None or not is_member(session, job.project_id, user):
        raise NotFound(f"job {job_id} not found")
    return job


def members_of(session: Session, project: Project) -> list[User]:
    """The project's members by name (admins who were not added are not listed)."""
    return list(
        session.scalars(
            select(User)
            .join(ProjectMember, ProjectMember.user_id == User.id)
            .where(ProjectMember.project_id == project.id)
            .order_by(User.username)
        )
    )


def member_since(session: Session, project: Project, user: User) -> datetime | None:
    """When ``user`` was added to the project (None: not a member)."""
    row = session.get(ProjectMember, (project.id, user.id))
    return row.created_at if row is not None else None


def add_member(session: Session, project: Project, user: User, added_by: User | None) -> bool:
    """Make ``user`` a member; False when they already were (adding twice changes nothing)."""
    if session.get(ProjectMember, (project.id, user.id)) is not None:
        return False
    session.add(
        ProjectMember(
            project_id=project.id,
            user_id=user.id,
            added_by_id=added_by.id if added_by else None,
        )
    )
    session.flush()
    return True


def remove_member(session: Session, project: Project, user: User) -> bool:
    """End ``user``'s membership at once: the leases they hold in the project go back to the
    queue, so nobody waits for an item they can no longer decide. False when not a member."""
    removed = session.execute(
        delete(ProjectMember).where(
            ProjectMember.project_id == project.id, ProjectMember.user_id == user.id
        )
    ).rowcount
    release(session, project, user)
    session.flush()
    return removed == 1


def find_user(session: Session, username: str | None = None, user_id: int | None = None) -> User:
    """A user by name or id, for the member forms, API and CLI."""
    if user_id is not None:
        user = session.get(User, user_id)
        wanted = f"user {user_id}"
    else:
        user = session.scalar(select(User).where(User.username == username))
        wanted = f"user '{username}'"
    if user is None:
        raise NotFound(f"{wanted} not found")
    return user
