"""Log in and out, and change one's own password."""

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from app.core.auth import (
    authenticate,
    end_sessions,
    page_user,
    session_user,
    start_session,
    verify_csrf,
)
from app.core.config import get_settings
from app.core.db import get_db
from app.core.login_limit import TooManyLogins, client_address, login_limiter
from app.models import User
from app.services import users as user_service
from app.web.templating import render

router = APIRouter()
PASSWORD_PAGE = "/account/password"


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


def _with_retry_after(response, err: TooManyLogins):
    response.headers["Retry-After"] = str(err.retry_after_s)
    return response


def _password_page(
    request: Request,
    user: User,
    status_code: int = 200,
    error: str | None = None,
    done: bool = False,
):
    return render(
        request,
        "account_password.html",
        status_code=status_code,
        user=user,
        error=error,
        done=done,
        password_min_length=get_settings().password_min_length,
    )


@router.get("/login")
def login_page(request: Request, next: str | None = None):
    return render(request, "login.html", next=_safe_next(next), error=None)


@router.post("/login", dependencies=[Depends(verify_csrf)])
def login(
    request: Request,
    username: str = Form(...),
    password: str = Form(...),
    next: str = Form("/"),
    db: Session = Depends(get_db),
):
    limiter, address = login_limiter(request), client_address(request)
    try:
        limiter.attempt(username, address)  # counted before the check: parallel tries too
    except TooManyLogins as err:
        page = render(request, "login.html", 429, next=_safe_next(next), error=str(err))
        return _with_retry_after(page, err)
    user = authenticate(db, username, password)
    if user is None:
        return render(
            request,
            "login.html",
            status_code=401,
            next=_safe_next(next),
            error="Wrong username or password.",
        )
    limiter.succeeded(username, address)
    start_session(request, user)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", dependencies=[Depends(verify_csrf)])
def logout(request: Request, db: Session = Depends(get_db)):
    """Ends every session of the user, on every device, not only this browser's."""
    user = session_user(request, db)
    if user is not None:
        end_sessions(user)
        db.commit()
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get(PASSWORD_PAGE)
def password_page(request: Request, user: User = Depends(page_user)):
    return _password_page(request, user)


@router.post(PASSWORD_PAGE, dependencies=[Depends(verify_csrf)])
def change_password(
    request: Request,
    current_password: str = Form(...),
    new_password: str = Form(...),
    new_password_again: str = Form(...),
    db: Session = Depends(get_db),
    user: User = Depends(page_user),
):
    """Ends the user's other sessions; this browser gets a fresh one and stays logged in.

    The current password is counted against the login limit, as a login would be: a session
    left open must not become a way to guess it."""
    if new_password != new_password_again:
        return _password_page(request, user, 422, "new_password_again: the two passwords differ")
    limiter, address = login_limiter(request), client_address(request)
    try:
        limiter.attempt(user.username, address)
    except TooManyLogins as err:
        return _with_retry_after(_password_page(request, user, 429, str(err)), err)
    try:
        user_service.change_own_password(user, current_password, new_password)
    except user_service.UserError as err:
        db.rollback()
        if err.field != "current_password":  # the current password was right
            limiter.succeeded(user.username, address)
        return _password_page(request, user, 422, str(err))
    db.commit()
    limiter.succeeded(user.username, address)
    db.refresh(user)
    start_session(request, user)
    return _password_page(request, user, done=True)
