"""Every task kind brings each page partial the shared pages include (``KindSpec.template``),
and each one renders: a kind added without one would fail only on the page that needs it."""

from pathlib import Path

import pytest

from app.kinds.registry import KINDS, TEMPLATE_PARTS

TEMPLATES = Path(__file__).parents[1] / "templates"


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("part", TEMPLATE_PARTS)
def test_each_kind_has_each_partial(kind, part):
    path = TEMPLATES / KINDS[kind].template(part)
    assert path.is_file(), f"{kind} has no {part} partial ({path})"
    assert path.read_text().strip(), f"{path} is empty"
