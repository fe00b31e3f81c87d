"""Exchange a username and password for an API token."""

from fastapi import APIRouter, Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from app.api.errors import errors
from app.auth import authenticate, issue_token
from app.db import get_db
from app.login_limit import TooManyLogins, client_address, login_limiter, too_many
from app.schemas import TokenOut, TokenRequest

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
        limiter.check(body.username, address)
    except TooManyLogins as err:
        raise too_many(err) from None
    user = authenticate(db, body.username, body.password)
    if user is None:
        limiter.failed(body.username, address)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    limiter.succeeded(body.username, address)
    token = issue_token(db, user, body.name)
    db.commit()
    return TokenOut(token=token)
