"""The data browser's filters as query parameters, shared by the item list (API and page) and
the export (API and page), so one URL means the same set everywhere."""

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.db import MAX_ROW_ID
from app.models import DatasetKind, ItemStatus
from app.schemas import LABEL_MAX_LENGTH
from app.services.item_filters import ItemFilter

TEXT_QUERY_MAX = 200
OptionalLabel = Annotated[str | None, Field(max_length=LABEL_MAX_LENGTH)]


class ItemFilterParams(BaseModel):
    """Query parameters; an empty value (a page form's unset field) means no filter."""

    model_config = ConfigDict(extra="ignore")

    text: str | None = Field(
        None, max_length=TEXT_QUERY_MAX, description="in the text or external id, any case"
    )
    dataset_kind: DatasetKind | None = Field(None, description="only items of this kind")
    status: ItemStatus | None = Field(None, description="only items in this status")
    silver_label: OptionalLabel = None
    current_label: OptionalLabel = None
    suggested_label: OptionalLabel = Field(None, description="the newest model's suggestion")
    changed: bool | None = Field(
        None, description="true: the current label differs from the silver one; false: same"
    )
    rank_min: int | None = Field(
        None, ge=1, le=MAX_ROW_ID, description="suspicion rank at least (1: most suspicious)"
    )
    rank_max: int | None = Field(None, ge=1, le=MAX_ROW_ID, description="suspicion rank at most")
    annotator: str | None = Field(
        None, max_length=80, description="username with a decision on the item that stands"
    )

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    def to_filter(self) -> ItemFilter:
        return ItemFilter(**self.model_dump())


def item_filter(params: Annotated[ItemFilterParams, Query()]) -> ItemFilter:
    return params.to_filter()
