"""Systematic span errors as one action: the groups the newest model found (spans sharing a
surface string and a type whose summed influence on the gold dev set is harmful, stored with
the model version) and the change that retypes or removes a group's spans in every sentence,
applied through the bulk machinery (preview, one label event per sentence, undo as a whole)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.core.db import MAX_ROW_ID
from app.kinds.sequence_tagging.annotation import NO_ENTITIES, decode, encode
from app.kinds.sequence_tagging.formats import Span
from app.models import Item, Project
from app.services.bulk import Change
from app.services.queue import DecisionError
from app.services.results import latest_model_version

GROUPS_KEY = "span_groups"  # ModelVersion.metrics' key for the groups


@dataclass(frozen=True)
class SpanGroup:
    surface: str
    label: str  # the type the group's spans carry in the labels the model learned from
    suggested: str  # the type the evidence points to (``O``: not an entity)
    score: float
    members: list[tuple[int, int, int]]  # (item id, start, end)

    @property
    def item_ids(self) -> list[int]:
        return sorted({item_id for item_id, _, _ in self.members})


def span_groups(session: Session, project: Project) -> list[SpanGroup]:
    """The newest model version's groups, most harmful first (none before a first model)."""
    version = latest_model_version(session, project.id)
    if version is None:
        return []
    return [
        SpanGroup(
            g["surface"], g["label"], g["suggested"], g["score"], [tuple(m) for m in g["members"]]
        )
        for g in version.metrics.get(GROUPS_KEY, [])
    ]


def parse_members(values: Iterable[str]) -> dict[int, list[tuple[int, int]]]:
    """Form values ``item:start:end`` by item; ``DecisionError`` names a bad one."""
    out: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for value in values:
        parts = value.split(":")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise DecisionError(f"span: '{value[:40]}' is not item:start:end")
        item_id, start, end = map(int, parts)
        if item_id > MAX_ROW_ID:
            raise DecisionError(f"span: item {value[:40]} does not exist")
        out[item_id].append((start, end))
    return dict(out)


def retype(members: dict[int, list[tuple[int, int]]], from_type: str, to_type: str) -> Change:
    """Each sentence's spans at the members' boundaries that still carry ``from_type`` get
    ``to_type`` (``O``: removed); everything else in the sentence stays as it is now, so a span
    somebody corrected since the model ran is left alone."""

    def change(item: Item) -> str:
        spans = decode(item.current_label or NO_ENTITIES)
        places = set(members.get(item.id, ()))
        kept = [s for s in spans if not ((s.start, s.end) in places and s.label == from_type)]
        if to_type != NO_ENTITIES:
            kept += [
                Span(s.start, s.end, to_type)
                for s in spans
                if (s.start, s.end) in places and s.label == from_type
            ]
        return encode(kept)

    return change


def describe_retype(surface: str, from_type: str, to_type: str) -> str:
    """The bulk change's label: what the group action did."""
    after = "not an entity" if to_type == NO_ENTITIES else to_type
    return f"'{surface}' {from_type} -> {after}"
