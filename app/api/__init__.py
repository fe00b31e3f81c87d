"""JSON API under /api/v1 (bearer tokens)."""

from fastapi import APIRouter

from app.api import auth, bulk, export, items, jobs, members, projects, queue

router = APIRouter(prefix="/api/v1")
for module in (auth, projects, members, jobs, items, queue, bulk, export):
    router.include_router(module.router)
