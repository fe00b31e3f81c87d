"""One strict JSON reader for request bodies and JSONL rows.

Python's json accepts what the database or the rest of the app cannot take: duplicate keys
(the last silently wins), NaN and Infinity, lone UTF-16 surrogates such as ``"\\ud800"``
(PostgreSQL refuses them at INSERT, so they became 500s), and nesting deep enough to raise
RecursionError. Each is refused here, with the path of the offending value.
"""

from __future__ import annotations

import json
import re
from typing import Any

from app.core.text import excerpt

SURROGATE = re.compile("[\ud800-\udfff]")


class JsonRefused(ValueError):
    """Valid JSON syntax that Assay does not accept; ``path`` locates the value."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()):
        self.message, self.path = message, path
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        super().__init__(f"{where}: {message}" if where else message)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` that refuses a repeated key: json's default keeps the last one
    silently, so the value the client meant and the one stored could differ."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise JsonRefused(f"key '{excerpt(duplicate, 80)}' appears twice")
    return record


def _not_json(constant: str) -> Any:
    """Python's json reads NaN and Infinity; JSON has no such values."""
    raise JsonRefused(f"{constant} is not a JSON value")


def has_surrogate(text: str) -> bool:
    """A lone surrogate (a pair in the input decodes to one character, so never matches)."""
    return SURROGATE.search(text) is not None


def check_value(value: Any, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth`` and strings (keys too) with lone surrogates;
    iterative, so a deep value cannot exhaust the stack here."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if has_surrogate(node):
                raise JsonRefused("contains a lone UTF-16 surrogate (not valid Unicode)", path)
            continue
        if isinstance(node, dict):
            children = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        else:
            continue
        if len(path) >= max_depth:
            raise JsonRefused(f"nested deeper than {max_depth} levels", path)
        for key, child in children:
            if isinstance(key, str) and has_surrogate(key):
                raise JsonRefused("a key contains a lone UTF-16 surrogate", path)
            stack.append((child, (*path, key)))


def loads(text: str | bytes, max_depth: int) -> Any:
    """``json.loads`` that refuses duplicate keys, NaN/Infinity, lone surrogates and nesting
    deeper than ``max_depth`` (``JsonRefused``); bad syntax raises ``json.JSONDecodeError``."""
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_not_json)
    except RecursionError:
        raise JsonRefused(f"nested deeper than {max_depth} levels") from None
    check_value(value, max_depth)
    return value
