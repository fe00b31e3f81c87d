"""HTML pages and htmx fragments (login sessions, CSRF on every form)."""

from fastapi import APIRouter

from app.web import account, admin, dashboard, downloads, projects, review, reviewer

router = APIRouter(include_in_schema=False)
for module in (account, projects, review, reviewer, downloads, admin, dashboard):
    router.include_router(module.router)
