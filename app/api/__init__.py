"""JSON API under /api/v1 (bearer tokens)."""

from fastapi import APIRouter

from app.api import auth, items, jobs, projects

router = APIRouter(prefix="/api/v1")
for module in (auth, projects, jobs, items):
    router.include_router(module.router)
