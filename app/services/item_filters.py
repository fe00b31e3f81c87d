"""The data browser's filters as SQL conditions: one definition for the item list (page and
API) and the filtered export, so what a user sees is what they download.

The conditions read ``Item`` and the newest model version's ``Prediction`` (the queries that use
them join it); the annotator filter is a subquery over the label history.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import aliased

from app.models import DatasetKind, Item, ItemStatus, LabelEvent, Prediction, User
from app.services.decision_counts import person_decision

LIKE_ESCAPE = "\\"


@dataclass(frozen=True)
class ItemFilter:
    """What to keep; ``None`` keeps everything. ``changed``: items with a silver label whose
    current label differs from it (True) or not (False); gold and test items have none.
    ``rank_min``/``rank_max``: the suspicion rank range, 1 being the most suspicious.
    ``annotator``: a username with a decision on the item that stands (not undone)."""

    text: str | None = None
    dataset_kind: DatasetKind | None = None
    status: ItemStatus | None = None
    silver_label: str | None = None
    current_label: str | None = None
    suggested_label: str | None = None
    changed: bool | None = None
    rank_min: int | None = None
    rank_max: int | None = None
    annotator: str | None = None

    def is_empty(self) -> bool:
        return all(value is None for value in asdict(self).values())

    def query_params(self) -> dict[str, str]:
        """The filter as URL query parameters (what the page links and the export carry)."""
        params = {}
        for name, value in asdict(self).items():
            if value is None:
                continue
            params[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return params

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.text:
            pattern = f"%{_escape_like(self.text.lower())}%"
            found.append(
                func.lower(Item.text).like(pattern, escape=LIKE_ESCAPE)
                | func.lower(Item.external_id).like(pattern, escape=LIKE_ESCAPE)
            )
        for column, wanted in (
            (Item.dataset_kind, self.dataset_kind),
            (Item.status, self.status),
            (Item.silver_label, self.silver_label),
            (Item.current_label, self.current_label),
            (Prediction.suggested_label, self.suggested_label),
        ):
            if wanted is not None:
                found.append(column == wanted)
        if self.changed is not None:  # only items with a silver label: gold has none to change
            differs = Item.current_label.is_distinct_from(Item.silver_label)
            found.append(Item.silver_label.is_not(None) & (differs if self.changed else ~differs))
        if self.rank_min is not None:
            found.append(Prediction.suspicion_rank >= self.rank_min)
        if self.rank_max is not None:
            found.append(Prediction.suspicion_rank <= self.rank_max)
        if self.annotator:
            found.append(_decided_by(self.annotator))
        return found


def _escape_like(text: str) -> str:
    for special in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, LIKE_ESCAPE + special)
    return text


def _decided_by(username: str) -> ColumnElement[bool]:
    author = aliased(User, name="decided_by")
    return exists(
        select(LabelEvent.id)
        .join(author, author.id == LabelEvent.user_id)
        .where(LabelEvent.item_id == Item.id, author.username == username, person_decision())
        .correlate(Item)  # only Item: an export's own join of label events stays outside
    )
