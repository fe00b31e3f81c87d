"""The interactive API docs (Swagger UI) served from the installed npm package `swagger-ui-dist`.

Why not FastAPI's default docs page: it loads Swagger UI from a CDN, so it is blank without
internet, and its inline start-up script breaks the Content-Security-Policy. Here the assets
come from node_modules (package.json; scripts/setup.sh runs `npm ci`) and the inline script
carries the request's CSP nonce.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from app.core.config import get_settings
from app.core.security_headers import csp_nonce
from app.web.static import cache_control

DOCS_PATH = "/api/v1/docs"
VENDOR = "/vendor/swagger-ui"
ASSETS = {  # the package's files the page needs, and nothing else of node_modules
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}

router = APIRouter(include_in_schema=False)


@router.get(DOCS_PATH)
def docs(request: Request) -> HTMLResponse:
    """Swagger UI for /api/v1/openapi.json; no request leaves this origin (no validator)."""
    page = get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} API",
        swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui.css",
        swagger_favicon_url=f"{VENDOR}/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = page.body.decode().replace("<script>", f'<script nonce="{csp_nonce(request)}">')
    return HTMLResponse(html)


@router.get(VENDOR + "/{name}")
def swagger_asset(name: str) -> FileResponse:
    """One of Swagger UI's files from its npm package, cached like /static."""
    if name not in ASSETS:
        raise HTTPException(status_code=404, detail="Not Found")
    settings = get_settings()
    return FileResponse(
        settings.swagger_ui_dir / name,
        media_type=ASSETS[name],
        headers={"Cache-Control": cache_control(settings.static_max_age_s)},
    )
