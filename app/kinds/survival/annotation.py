"""A survival record's follow-up as one annotation string, ``"<duration> <event>"``, so votes,
label events, undo, bulk changes and exports handle it as they handle any kind's label.

Canonical: the duration as the shortest decimal that reads back as the same float (``1814``,
``12.5``, never an exponent), one space, the event indicator ``1`` (event observed) or ``0``
(censored). Two annotators who enter ``12.50 1`` and ``12.5 1`` write the same string.
"""

from __future__ import annotations

import math
from decimal import Decimal

EVENT, CENSORED = "1", "0"
# event cells an upload may use (case-insensitive); annotations themselves use only 1 and 0
EVENT_WORDS = {"1": EVENT, "0": CENSORED, "true": EVENT, "false": CENSORED}


class BadAnnotation(ValueError):
    """A duration, event or annotation string that is not a valid follow-up."""


def duration_of(text: str) -> float:
    """A positive finite duration from its text; ``BadAnnotation`` says what is wrong."""
    try:
        value = float(text.strip())
    except ValueError:
        raise BadAnnotation(f"duration '{text[:40]}' is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise BadAnnotation(f"duration must be a positive finite number, not '{text[:40]}'")
    return value


def event_of(text: str) -> str:
    """``1`` or ``0`` from an event cell (1/0, true/false in any case)."""
    found = EVENT_WORDS.get(text.strip().lower())
    if found is None:
        raise BadAnnotation(f"event must be 1 (event) or 0 (censored), not '{text[:40]}'")
    return found


def decimal_text(value: float) -> str:
    """The shortest exact decimal of a float, without exponent or trailing zeros."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def encode(duration: float, event: str) -> str:
    return f"{decimal_text(duration)} {event}"


def decode(value: str) -> tuple[float, int]:
    """(duration, event 0/1) of an annotation string; ``BadAnnotation`` when it is not one."""
    parts = value.split(" ")
    if len(parts) != 2:
        raise BadAnnotation(
            f"'{value[:40]}' is not '<duration> <event>' (e.g. '1814 1' or '12.5 0')"
        )
    duration = duration_of(parts[0])
    if parts[1] not in (EVENT, CENSORED):
        raise BadAnnotation(f"event must be 1 (event) or 0 (censored), not '{parts[1][:40]}'")
    return duration, int(parts[1])


def checked(value: str) -> str:
    """The canonical form of an annotation string (``BadAnnotation`` when it is not one)."""
    duration, event = decode(value.strip())
    return encode(duration, str(event))


def describe(value: str | None) -> str:
    """``event at 1814`` / ``censored at 1814``; an unreadable string as it is."""
    if not value:
        return ""
    try:
        duration, event = decode(value)
    except BadAnnotation:
        return value
    return f"{'event' if event else 'censored'} at {decimal_text(duration)}"
