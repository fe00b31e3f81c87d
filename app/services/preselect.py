"""What the queue pre-selects for an item: nothing (the default), the model's suggestion, or the
silver label.

A pre-selected silver label made Enter rubber-stamp it: the label under review confirmed by
one key press without being read. So by default nothing is picked and Enter waits for a
label; "suggestion" picks InfFeed's suggested label where there is one (a proposal to check,
not the label being checked); "silver" brings the old behaviour back only when an admin sets it.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from app.models import Item, Prediction, Project

Preselect = Literal["nothing", "suggestion", "silver"]
PRESELECT_CHOICES: tuple[str, ...] = get_args(Preselect)
DEFAULT: Preselect = "nothing"
KEY = "preselect"


class BadPreselect(ValueError):
    """Not one of PRESELECT_CHOICES."""


def preselect_in(settings: dict[str, Any]) -> Preselect:
    """The setting in a project's settings; anything unknown stored there reads as the default."""
    value = settings.get(KEY)
    return value if value in PRESELECT_CHOICES else DEFAULT


def preselect_of(project: Project) -> Preselect:
    return preselect_in(project.settings)


def set_preselect(project: Project, value: str) -> None:
    if value not in PRESELECT_CHOICES:
        raise BadPreselect(f"preselect: one of {', '.join(PRESELECT_CHOICES)}, not '{value}'")
    project.settings = {**project.settings, KEY: value}


def preselected_label(project: Project, item: Item, prediction: Prediction | None) -> str | None:
    """The label to show picked when the item is served (None: none is)."""
    choice = preselect_of(project)
    if choice == "suggestion":
        return prediction.suggested_label if prediction is not None else None
    if choice == "silver":
        return item.current_label
    return None
