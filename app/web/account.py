"""Log in and out."""

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from app.auth import SESSION_USER, authenticate, verify_csrf
from app.db import get_db
from app.login_limit import TooManyLogins, client_address, login_limiter
from app.web.templating import render

router = APIRouter()


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


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
        limiter.check(username, address)
    except TooManyLogins as err:
        response = render(
            request, "login.html", status_code=429, next=_safe_next(next), error=str(err)
        )
        response.headers["Retry-After"] = str(err.retry_after_s)
        return response
    user = authenticate(db, username, password)
    if user is None:
        limiter.failed(username, address)
        return render(
            request,
            "login.html",
            status_code=401,
            next=_safe_next(next),
            error="Wrong username or password.",
        )
    limiter.succeeded(username, address)
    request.session.clear()
    request.session[SESSION_USER] = user.id
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", dependencies=[Depends(verify_csrf)])
def logout(request: Request):
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
