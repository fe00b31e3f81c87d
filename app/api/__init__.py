"""JSON API under /api/v1 (bearer tokens)."""

from fastapi import APIRouter

from app.api import auth, export, items, jobs, projects

router = APIRouter(prefix="/api/v1")
for module in (auth, projects, jobs, items, export):
    router.include_router(module.router)
