"""Small text helpers for messages that quote the input or name a limit.

Error messages must stay short whatever the client sent (a 20 MB field, a 200 KB label is
never echoed back whole), and limits read better in KiB/MiB than in raw byte counts.
"""

from __future__ import annotations


def excerpt(text: str, limit: int) -> str:
    """``text`` itself when at most ``limit`` characters, else its first ``limit`` and an
    ellipsis: what an error message may quote of the client's input."""
    return text if len(text) <= limit else text[:limit] + "…"


def size_text(limit: int) -> str:
    """A byte count as people read it in a 413 ("1 MiB", "64 KiB", "1000 bytes"); exact, so the
    message names the real limit rather than a rounded one."""
    mib, kib = 1 << 20, 1 << 10
    if limit >= mib and limit % mib == 0:
        return f"{limit // mib} MiB"
    if limit >= kib and limit % kib == 0:
        return f"{limit // kib} KiB"
    return f"{limit} bytes"
