"""The error responses of the API routes, declared once so the OpenAPI document lists them.

Clients (and the schema fuzz test) read the document to know which statuses a route can
answer; an error a route can give but does not declare is a documentation bug.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.core.config import get_settings
from app.core.text import excerpt
from app.services.jobs import JobConflict


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    """Every error but a 422 and a job's 409: a message."""

    detail: str = Field(description="what is wrong")


class ValidationErrorOut(BaseModel):
    """A 422: one issue per bad field from request validation, or a message from the route."""

    detail: list[ValidationIssue] | str = Field(
        description="one entry per bad field (loc names it), or what the route refused"
    )


class RunningJob(BaseModel):
    message: str
    job_id: int = Field(description="the job already queued or running: poll it")


class JobConflictOut(BaseModel):
    """A 409 of the routes that start a job: one of its kind is already queued or running."""

    detail: RunningJob


DESCRIPTIONS = {
    400: "the body could not be parsed (not UTF-8 JSON, or a broken multipart form)",
    401: "missing or invalid bearer token",
    403: "the token's user lacks the role this route needs",
    404: "the project, item or job does not exist",
    409: "conflicts with the current state (e.g. an action already taken, a job running)",
    413: "the request body is larger than its route's limit",
    422: "the request is not valid: the detail names the field",
    429: "too many failed logins for this user from this address",
    503: "busy (the queue lost every race for a free item) or the database is unavailable",
}
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}


MODELS: dict[int, type[BaseModel]] = {422: ValidationErrorOut}
JOB_RUNNING = {
    409: {"model": JobConflictOut, "description": "a job of this kind is already queued or running"}
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer with these error statuses; a 503 says when
    to retry, so clients (and the fuzz test) know to expect the header. A route that starts a
    job adds ``JOB_RUNNING`` for its 409 instead."""
    return {
        code: {"model": MODELS.get(code, ErrorOut), "description": DESCRIPTIONS[code]}
        | ({"headers": RETRY_AFTER} if code == 503 else {})
        for code in codes
    }


def job_running(err: JobConflict) -> HTTPException:
    """The 409 ``JOB_RUNNING`` documents, naming the job to poll instead."""
    detail = RunningJob(message=str(err), job_id=err.job.id)
    return HTTPException(status.HTTP_409_CONFLICT, detail.model_dump())


def _short(value: Any, limit: int) -> Any:
    """``value`` as is when small, else an excerpt of its text (a 20 MB field is not echoed)."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    text = value if isinstance(value, str) else json.dumps(jsonable_encoder(value), default=str)
    if len(text) <= limit:
        return value
    return excerpt(text, limit)


async def validation_error(_: Request, err: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, but each issue's ``input`` and ``ctx`` cut to ASSAY_ERROR_EXCERPT_CHARS:
    the default echoes the whole input back."""
    limit = get_settings().error_excerpt_chars
    issues = []
    for issue in err.errors():
        issue = dict(issue)
        if "input" in issue:
            issue["input"] = _short(issue["input"], limit)
        if "ctx" in issue:
            issue["ctx"] = {key: _short(value, limit) for key, value in issue["ctx"].items()}
        issues.append(issue)
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(issues)})
