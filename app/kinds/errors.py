"""The one error every task kind's file reader raises."""

from __future__ import annotations

from typing import Any


class FormatError(ValueError):
    """Bad input, located by file, line (None: the file as a whole) and field: every kind's
    reader raises this one type, so every importer (page, API, CLI) shows it alike."""

    def __init__(self, filename: str, line: int | None, field: str | None, message: str):
        self.filename, self.line, self.field, self.message = filename, line, field, message
        where = [filename]
        if line:
            where.append(f"line {line}")
        if field:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.filename,
            "line": self.line,
            "field": self.field,
            "message": self.message,
        }
