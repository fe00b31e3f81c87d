"""Write README.md's Configuration table from app/core/config.py's Settings, between markers.

The table is generated, not kept by hand, so it cannot drift from the settings the code reads:
tests/test_settings_table.py fails when README.md differs from what this script writes. Each
row is the variable, its default and the field's ``description=``.

    .venv/bin/python -m scripts.settings_table
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, get_args, get_origin

from pydantic.fields import FieldInfo

from app.core.config import REPO_ROOT, Settings

README = REPO_ROOT / "README.md"
START, END = "<!-- settings -->", "<!-- /settings -->"
BLOCK = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
UNITS = ((86400, "d"), (3600, "h"), (60, "min"))


class MissingDescription(ValueError):
    """A setting without ``description=``: its README row would have nothing to say."""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _plain(value: object) -> str:
    if isinstance(value, Path):  # the checkout's own files: the same on every machine
        return f"<repo>/{value.relative_to(REPO_ROOT)}" if value.is_absolute() else str(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def default_of(name: str, field: FieldInfo) -> str:
    """The default as the table shows it: code-formatted, with a readable size or duration."""
    value = field.default
    if value is None:
        return "none"
    if value == "":
        return "empty"
    shown = f"`{_plain(value)}`"
    if isinstance(value, int) and not isinstance(value, bool) and value:
        if name.endswith("_bytes") and value >= 1024:
            size, unit = (value / 1024**2, "MiB") if value >= 1024**2 else (value / 1024, "KiB")
            return f"{shown} ({size:g} {unit})"
        if name.endswith("_s"):
            for seconds, unit in UNITS:
                if value >= 2 * seconds or value == seconds:
                    return f"{shown} ({value / seconds:g} {unit})"
    return shown


def rows() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting, in the class's order."""
    found = []
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise MissingDescription(f"Settings.{name} has no description=")
        meaning = field.description
        if get_origin(field.annotation) is Literal:  # a fixed set: name every choice
            meaning += (
                " (" + ", ".join(f"`{choice}`" for choice in get_args(field.annotation)) + ")"
            )
        found.append((f"`ASSAY_{name.upper()}`", default_of(name, field), meaning))
    return found


def table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| {_cell(v)} | {_cell(d)} | {_cell(m)} |" for v, d, m in rows()]
    return "\n".join(lines)


def updated(readme: str) -> str:
    """``readme`` with the block between the markers replaced by the current table."""
    if not BLOCK.search(readme):
        raise ValueError(f"README.md has no {START} ... {END} block")
    return BLOCK.sub(lambda _: f"{START}\n{table()}\n{END}", readme, count=1)


def main() -> None:
    README.write_text(updated(README.read_text()))


if __name__ == "__main__":
    main()
