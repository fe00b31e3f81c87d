"""A project's annotation guidelines: Markdown an admin writes, shown to annotators on the queue.

They live in ``project.settings["guidelines"]`` (no table of their own: one text per project).
The text comes from an admin, but the page shows it to every member, so it is rendered as
untrusted: CommonMark with raw HTML off (``<script>`` stays text) and links and images only to
http, https and mailto (a ``javascript:`` link is left as plain text). Markdown itself cannot
make an attribute such as ``onerror``, so what comes out is markup the renderer wrote.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markupsafe import Markup

from app.core.config import get_settings
from app.models import Project

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
KEY = "guidelines"


class BadGuidelines(ValueError):
    """Guidelines that cannot be stored (too long); the message says why."""


def _safe_link(url: str) -> bool:
    """Only http(s) and mailto links, or relative ones (no scheme: this site's pages); anything
    else (javascript:, data:, vbscript:, file:...) is not made into a link."""
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:  # a malformed URL (an unbalanced IPv6 bracket...) is not linked
        return False
    return scheme in SAFE_SCHEMES or scheme == ""


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.validateLink = _safe_link  # markdown-it asks this for every link and image URL
    return md


_MD = _renderer()


def guidelines_of(project: Project) -> str:
    """The project's guidelines as written ('' when there are none)."""
    return str(project.settings.get(KEY) or "")


def set_guidelines(project: Project, text: str) -> None:
    """Store the guidelines (blank: none), at most ASSAY_MAX_GUIDELINES_CHARS characters."""
    limit = get_settings().max_guidelines_chars
    if len(text) > limit:
        raise BadGuidelines(
            f"guidelines: at most {limit} characters (ASSAY_MAX_GUIDELINES_CHARS), got {len(text)}"
        )
    text = text.replace("\r\n", "\n").strip()
    settings = {k: v for k, v in project.settings.items() if k != KEY}
    project.settings = {**settings, KEY: text} if text else settings


def render_guidelines(text: str) -> Markup:
    """The guidelines as HTML that is safe to put on a page as is (see the module's note)."""
    return Markup(_MD.render(text)) if text.strip() else Markup("")
