"""A sentence's entities as one annotation string, so every layer that stores, votes on,
compares, undoes and exports a label (items, votes, label events, groups, predictions) handles
a sequence-tagging annotation unchanged.

The form is canonical: ``start:end:TYPE`` per span (token offsets, end exclusive), sorted and
joined by single spaces; ``O`` is the sentence without entities. Two annotators who mark the
same spans write the same string, so agreement and majority votes compare strings. A type
follows the formats' rules (no whitespace, not ``O``); it is everything after the second colon,
so it may itself contain colons.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from app.kinds.sequence_tagging.formats import Span, check_spans

NO_ENTITIES = "O"


class BadAnnotation(ValueError):
    """An annotation string that is not a valid set of spans for its sentence."""


def encode(spans: Iterable[Span]) -> str:
    """The canonical string of a set of spans."""
    ordered = sorted(spans)
    return " ".join(f"{s.start}:{s.end}:{s.label}" for s in ordered) or NO_ENTITIES


def decode(value: str) -> list[Span]:
    """The spans of an annotation string (sorted); ``BadAnnotation`` names the bad part."""
    if value.strip() == NO_ENTITIES:
        return []
    spans = []
    for part in value.split():
        start, sep, rest = part.partition(":")
        end, sep2, label = rest.partition(":")
        if not (sep and sep2 and start.isdigit() and end.isdigit() and label):
            raise BadAnnotation(f"'{part[:40]}' is not start:end:TYPE")
        try:
            spans.append(Span(int(start), int(end), label))
        except ValueError as err:
            raise BadAnnotation(str(err)) from None
    return sorted(spans)


def checked(value: str, types: Sequence[str], n_tokens: int) -> str:
    """``value`` in canonical form, if it is a valid annotation of a sentence of ``n_tokens``
    tokens using only ``types``; else ``BadAnnotation`` saying what is wrong."""
    spans = decode(value)
    try:
        check_spans(n_tokens, spans)
    except ValueError as err:
        raise BadAnnotation(str(err)) from None
    allowed = set(types)
    for span in spans:
        if span.label not in allowed:
            known = ", ".join(types)
            raise BadAnnotation(f"unknown entity type '{span.label[:40]}' (project types: {known})")
    return encode(spans)


def describe(value: str | None, tokens: Sequence[str]) -> str:
    """Readable form for lists and histories: ``[Barack Obama]PERSON visited [Paris]GPE``."""
    if value is None:
        return ""
    try:
        spans = decode(value)
    except BadAnnotation:
        return value
    if not spans:
        return "no entities"
    return "; ".join(f"{' '.join(tokens[s.start : s.end])} ({s.label})" for s in spans)
