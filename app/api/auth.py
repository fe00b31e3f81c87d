"""Exchange a username and password for an API token."""

from fastapi import APIRouter, Depends, HTTPException, status
from sqlalchemy.orm import Session

from app.auth import authenticate, issue_token
from app.db import get_db
from app.schemas import TokenOut, TokenRequest

router = APIRouter(tags=["auth"])


@router.post("/auth/token", response_model=TokenOut, status_code=status.HTTP_201_CREATED)
def create_token(body: TokenRequest, db: Session = Depends(get_db)) -> TokenOut:
    user = authenticate(db, body.username, body.password)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    token = issue_token(db, user, body.name)
    db.commit()
    return TokenOut(token=token)
