"""HTML pages and htmx fragments (login sessions, CSRF on every form)."""

from fastapi import APIRouter, Depends

from app.web import (
    account,
    admin,
    browser,
    dashboard,
    downloads,
    members,
    projects,
    review,
    reviewer,
    span_groups,
)
from app.web.form_guard import reject_nul_in_form

router = APIRouter(include_in_schema=False, dependencies=[Depends(reject_nul_in_form)])
for module in (
    account,
    projects,
    members,
    review,
    browser,
    span_groups,
    reviewer,
    downloads,
    admin,
    dashboard,
):
    router.include_router(module.router)
