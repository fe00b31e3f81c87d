"""Admin pages: users, their roles and passwords, API tokens (shown once, stored hashed)."""

from collections.abc import Callable

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from app.api.deps import RowId
from app.core.auth import page_admin, start_session, verify_csrf
from app.core.config import get_settings
from app.core.db import MAX_ROW_ID, get_db
from app.models import ApiToken, Role, User
from app.services import users as user_service
from app.web.templating import render

router = APIRouter(prefix="/admin")
USERS = "/admin/users"
TOKENS = "/admin/tokens"


def _get(db: Session, model, key: int, what: str):
    row = db.get(model, key)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{what} {key} not found")
    return row


def _users_page(request: Request, db: Session, user: User, error: str | None = None):
    return render(
        request,
        "admin_users.html",
        status_code=422 if error else 200,
        user=user,
        rows=user_service.list_users(db),
        roles=list(Role),
        error=error,
        password_min_length=get_settings().password_min_length,
    )


def _tokens_page(
    request: Request,
    db: Session,
    user: User,
    error: str | None = None,
    new_token: str | None = None,
    status_code: int = 200,
):
    return render(
        request,
        "admin_tokens.html",
        status_code=422 if error else status_code,
        user=user,
        tokens=user_service.list_tokens(db),
        rows=[row for row in user_service.list_users(db) if row.active],
        error=error,
        new_token=new_token,
    )


def _change_user(request: Request, db: Session, admin: User, change: Callable[[], object]):
    """Apply a change and go back to the list, or show the list with what was refused."""
    try:
        change()
    except user_service.UserError as err:
        db.rollback()
        return _users_page(request, db, admin, str(err))
    db.commit()
    return RedirectResponse(USERS, status_code=303)


@router.get("/users")
def users_page(request: Request, db: Session = Depends(get_db), user: User = Depends(page_admin)):
    return _users_page(request, db, user)


@router.post("/users", dependencies=[Depends(verify_csrf)])
def create_user(
    request: Request,
    username: str = Form(...),
    password: str = Form(...),
    role: str = Form(Role.annotator),
    db: Session = Depends(get_db),
    user: User = Depends(page_admin),
):
    return _change_user(
        request, db, user, lambda: user_service.add_user(db, username, password, role)
    )


@router.post("/users/{user_id}/role", dependencies=[Depends(verify_csrf)])
def change_role(
    request: Request,
    user_id: RowId,
    role: str = Form(...),
    db: Session = Depends(get_db),
    user: User = Depends(page_admin),
):
    return _change_user(
        request,
        db,
        user,
        lambda: user_service.set_role(user, _get(db, User, user_id, "user"), role),
    )


@router.post("/users/{user_id}/deactivate", dependencies=[Depends(verify_csrf)])
def deactivate(
    request: Request,
    user_id: RowId,
    db: Session = Depends(get_db),
    user: User = Depends(page_admin),
):
    return _change_user(
        request,
        db,
        user,
        lambda: user_service.deactivate(db, user, _get(db, User, user_id, "user")),
    )


@router.post("/users/{user_id}/reactivate", dependencies=[Depends(verify_csrf)])
def reactivate(user_id: RowId, db: Session = Depends(get_db), _: User = Depends(page_admin)):
    user_service.reactivate(_get(db, User, user_id, "user"))
    db.commit()
    return RedirectResponse(USERS, status_code=303)


@router.post("/users/{user_id}/password", dependencies=[Depends(verify_csrf)])
def reset_password(
    request: Request,
    user_id: RowId,
    password: str = Form(...),
    db: Session = Depends(get_db),
    user: User = Depends(page_admin),
):
    """A new password (the password policy applies) that ends all of that user's sessions;
    the admin resetting their own keeps this browser's session."""
    target = _get(db, User, user_id, "user")
    response = _change_user(request, db, user, lambda: user_service.set_password(target, password))
    if target.id == user.id and isinstance(response, RedirectResponse):
        db.refresh(user)
        start_session(request, user)
    return response


@router.get("/tokens")
def tokens_page(request: Request, db: Session = Depends(get_db), user: User = Depends(page_admin)):
    return _tokens_page(request, db, user)


@router.post("/tokens", dependencies=[Depends(verify_csrf)])
def create_token(
    request: Request,
    user_id: int = Form(..., ge=1, le=MAX_ROW_ID),
    name: str = Form(...),
    db: Session = Depends(get_db),
    user: User = Depends(page_admin),
):
    """Answers with the page itself, the token in it: it is never stored or shown again."""
    try:
        token = user_service.add_token(db, _get(db, User, user_id, "user"), name)
    except user_service.UserError as err:
        db.rollback()
        return _tokens_page(request, db, user, error=str(err))
    db.commit()
    response = _tokens_page(request, db, user, new_token=token, status_code=201)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/tokens/{token_id}/revoke", dependencies=[Depends(verify_csrf)])
def revoke_token(token_id: RowId, db: Session = Depends(get_db), _: User = Depends(page_admin)):
    user_service.revoke_token(db, _get(db, ApiToken, token_id, "token"))
    db.commit()
    return RedirectResponse(TOKENS, status_code=303)
