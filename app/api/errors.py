"""The error responses of the API routes, declared once so the OpenAPI document lists them.

Clients (and the schema fuzz test) read the document to know which statuses a route can
answer; an error a route can give but does not declare is a documentation bug.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    """``detail`` is a message, the request-validation issues, or (a job conflict) an object."""

    detail: str | list[ValidationIssue] | dict[str, Any] = Field(
        description="what is wrong; for request validation, one entry per bad field"
    )


DESCRIPTIONS = {
    400: "the body could not be parsed (not UTF-8 JSON, or a broken multipart form)",
    401: "missing or invalid bearer token",
    403: "the token's user lacks the role this route needs",
    404: "the project, item or job does not exist",
    409: "conflicts with the current state (e.g. an action already taken, a job running)",
    422: "the request is not valid: the detail names the field",
    429: "too many failed logins for this user from this address",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer with these error statuses."""
    return {code: {"model": ErrorOut, "description": DESCRIPTIONS[code]} for code in codes}
