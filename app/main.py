"""create_app(): the FastAPI web process. It never imports torch; work goes to the workers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import api, web
from app.api.errors import validation_error
from app.core.admission import AdmissionLimit
from app.core.auth import LoginRequired
from app.core.config import Settings, get_settings
from app.core.db import get_engine, migrate
from app.core.login_limit import LoginLimiter
from app.core.request_limits import RequestLimits
from app.core.security_headers import SecurityHeaders
from app.core.session_cookie import SessionCookieMiddleware
from app.schemas import DatasetUpload
from app.services.job_reaper import start_reaper
from app.services.jobs import BrokerUnavailable
from app.services.queue import QueueBusy
from app.services.retraining import install_retrain_hook
from app.web import api_docs
from app.web.error_pages import CrashPage, http_error
from app.web.static import CachedStaticFiles, cache_control
from app.web.templating import FragmentOpenedDirectly

log = logging.getLogger(__name__)
RETRY_LATER = {"Retry-After": "5"}  # seconds: a broker or database restart


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> FastAPI:
    settings = settings or get_settings()
    secret = settings.resolved_secret_key()  # production refuses to start without one
    install_retrain_hook()  # every N corrections, whichever route made them, start retraining

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if run_migrations:
            migrate()
        stop_reaper = start_reaper()  # jobs whose worker died are re-queued or failed
        yield
        stop_reaper()

    app = FastAPI(
        title="Assay",
        summary="Influence-guided relabelling of silver datasets",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # app.web.api_docs serves it from node_modules, CSP-clean
        redoc_url=None,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    app.openapi = documented(app, DatasetUpload)  # type: ignore[method-assign]
    app.state.login_limiter = LoginLimiter(settings)
    app.add_middleware(CrashPage)  # innermost: a page's crash gets the styled 500 page
    app.add_middleware(
        SessionCookieMiddleware,  # HttpOnly, SameSite=lax; Secure on HTTPS or when configured
        secret_key=secret,
        session_cookie="assay_session",
        max_age=settings.session_idle_timeout_s,  # re-sent on every response: an idle limit
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(AdmissionLimit, limit=settings.max_concurrent_requests)
    app.add_middleware(RequestLimits, settings=settings)  # body caps before admission
    app.add_middleware(  # outermost: every response, the admission queue's included
        SecurityHeaders,
        hsts_max_age_s=settings.hsts_max_age_s,
        referrer_policy=settings.referrer_policy,
    )
    app.include_router(api.router)
    app.include_router(web.router)
    app.include_router(api_docs.router)
    app.mount(
        "/static", CachedStaticFiles(settings.static_dir, settings.static_max_age_s), name="static"
    )

    @app.get("/vendor/htmx.min.js", include_in_schema=False)
    def htmx_js() -> FileResponse:
        """htmx from its installed npm package (package.json), not a committed copy."""
        return FileResponse(
            settings.htmx_js,
            media_type="text/javascript",
            headers={"Cache-Control": cache_control(settings.static_max_age_s)},
        )

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        """Browsers and tools ask for /favicon.ico before reading a page's <link rel="icon">."""
        return FileResponse(
            settings.static_dir / "favicon.svg",
            media_type="image/svg+xml",
            headers={"Cache-Control": cache_control(settings.static_max_age_s)},
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness for docker-compose and load balancers: the database answers."""
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok"}

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)  # styled pages, JSON for API

    @app.exception_handler(FragmentOpenedDirectly)
    async def to_page(_: Request, err: FragmentOpenedDirectly) -> RedirectResponse:
        """A fragment's URL opened by hand: the page it belongs in, not bare unstyled HTML."""
        return RedirectResponse(err.page, status_code=303)

    @app.exception_handler(QueueBusy)
    async def queue_busy(_: Request, err: QueueBusy) -> JSONResponse:
        """Every free item was taken under us several times running: retry shortly."""
        retry = str(settings.queue_busy_retry_after_s)
        return JSONResponse({"detail": str(err)}, status_code=503, headers={"Retry-After": retry})

    @app.exception_handler(BrokerUnavailable)
    async def broker_down(_: Request, err: BrokerUnavailable) -> JSONResponse:
        """The web process stays up without its broker; starting work says to try later."""
        return JSONResponse({"detail": str(err)}, status_code=503, headers=RETRY_LATER)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_down(_: Request, err: DBAPIError) -> JSONResponse:
        """The database refused or dropped the connection (or SQLite stayed locked): a 503 to
        retry, not a 500. The transaction did not commit, or its outcome is unknown when the
        drop hit the commit: queue actions carry idempotency keys, so their retry is safe.
        SQLite reports its schema errors as operational too; those stay a 500."""
        if _is_sqlite_schema_error(err):
            raise err
        log.warning("database unavailable: %s", err.orig)
        return JSONResponse(
            {"detail": "the database is unavailable; try again"},
            status_code=503,
            headers=RETRY_LATER,
        )

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, _: LoginRequired) -> RedirectResponse:
        target = quote(request.url.path)
        if request.headers.get("HX-Request"):
            response = RedirectResponse("/login", status_code=204)
            response.headers["HX-Redirect"] = f"/login?next={target}"
            return response
        return RedirectResponse(f"/login?next={target}", status_code=303)

    return app


def documented(app: FastAPI, *forms: type[BaseModel]) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with the models of the bodies that routes read themselves (``forms``,
    referred to by their ``openapi_extra``) added to the document's components: FastAPI only
    collects the models its routes declare."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for model in forms:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[model.__name__] = schema
        return app.openapi_schema

    return openapi


def operation_id(route: APIRoute) -> str:
    """The route's name (its function's, unless ``name=`` says otherwise) as its operation id:
    generated clients name their calls and models after it (``upload_dataset``, not
    ``upload_dataset_api_v1_projects__project_id__datasets_post``), and it stays put when a
    path changes."""
    return route.name


def _is_sqlite_schema_error(err: DBAPIError) -> bool:
    """sqlite3 raises OperationalError for "no such column" as for "database is locked"."""
    transient = ("database is locked", "unable to open database", "disk i/o error")
    return type(err.orig).__module__ == "sqlite3" and not any(
        t in str(err.orig).lower() for t in transient
    )


def migrated_app() -> FastAPI:
    """The factory each `assay serve` worker process calls (ASSAY_WEB_WORKERS > 1); the command
    has migrated the database before starting them."""
    return create_app(run_migrations=False)
