"""Exchange a username and password for an API token; change one's own password."""

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from sqlalchemy.orm import Session

from app.api.errors import errors
from app.core.auth import api_user, authenticate, issue_token
from app.core.db import get_db
from app.core.login_limit import TooManyLogins, client_address, login_limiter, too_many
from app.models import User
from app.schemas import PasswordChange, TokenOut, TokenRequest
from app.services import users as user_service

router = APIRouter(tags=["auth"])


@router.post(
    "/auth/token",
    response_model=TokenOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 422, 429),
)
def create_token(body: TokenRequest, request: Request, db: Session = Depends(get_db)) -> TokenOut:
    limiter, address = login_limiter(request), client_address(request)
    try:
        limiter.attempt(body.username, address)  # counted before the check: parallel tries too
    except TooManyLogins as err:
        raise too_many(err) from None
    user = authenticate(db, body.username, body.password)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    limiter.succeeded(body.username, address)
    token = issue_token(db, user, body.name, minted_by_login=True)
    db.commit()
    return TokenOut(token=token)


@router.post(
    "/auth/password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(400, 401, 422, 429),
)
def change_password(
    body: PasswordChange,
    request: Request,
    db: Session = Depends(get_db),
    user: User = Depends(api_user),
) -> Response:
    """The token's user sets a new password (the password policy applies; a wrong current
    password counts against the login limit). Every page session of the user ends, and so do
    the tokens minted from a password on /auth/token (this request's own included); tokens an
    admin made keep working."""
    limiter, address = login_limiter(request), client_address(request)
    try:
        limiter.attempt(user.username, address)
    except TooManyLogins as err:
        raise too_many(err) from None
    try:
        user_service.change_own_password(user, body.current_password, body.new_password)
    except user_service.UserError as err:
        db.rollback()
        if err.field != "current_password":  # the current password was right
            limiter.succeeded(user.username, address)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    db.commit()
    limiter.succeeded(user.username, address)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
