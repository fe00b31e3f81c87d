"""The Jinja2 environment shared by every page."""

from fastapi import Request
from fastapi.templating import Jinja2Templates

from app.core.auth import CSRF_FIELD, CSRF_HEADER, csrf_token
from app.core.config import get_settings
from app.core.security_headers import csp_nonce
from app.kinds.registry import KINDS, spec_of

templates = Jinja2Templates(directory=str(get_settings().templates_dir))
templates.env.globals.update(
    csrf_field=CSRF_FIELD, csrf_header=CSRF_HEADER, kinds=KINDS, kind_of=spec_of
)


def render(request: Request, name: str, status_code: int = 200, **context):
    context.setdefault("csrf", csrf_token(request))
    context.setdefault("csp_nonce", csp_nonce(request))  # for an inline <script nonce=...>
    return templates.TemplateResponse(request, name, context, status_code=status_code)


class FragmentOpenedDirectly(Exception):
    """A fragment route was opened as a page (a bookmark, a copied link): app.main answers
    with a 303 to ``page``, the page the fragment belongs in, instead of unstyled HTML."""

    def __init__(self, page: str) -> None:
        super().__init__(page)
        self.page = page


def fragment_of(request: Request, page: str) -> None:
    """Every htmx fragment route calls this once it has checked who may see the row (so a
    non-member still gets 404, not a redirect naming the project): htmx requests carry the
    HX-Request header, anything else is sent on to ``page``."""
    if "HX-Request" not in request.headers:
        raise FragmentOpenedDirectly(page)
