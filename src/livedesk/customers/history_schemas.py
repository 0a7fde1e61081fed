"""Request and response models of the customer history routes (search, recommendations,
notes, event details, privacy)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from livedesk.customers.privacy import ErasureMode
from livedesk.kit.http import ApiModel


class SearchHitOut(BaseModel):
    id: uuid.UUID
    display_name: str
    email: str | None
    phone: str | None
    matched: list[str] = Field(description="The search terms that matched.")


class SearchOut(BaseModel):
    query: str
    hits: list[SearchHitOut]


class SuggestionOut(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price_minor: int
    currency: str


class BoughtTogetherOut(SuggestionOut):
    orders_together: int = Field(description="Orders (of all shoppers) holding this item and one of theirs.")


class ReminderOut(SuggestionOut):
    last_bought_at: datetime
    interval_days: int = Field(
        description="Typical days between repurchases of this item, over all shoppers."
    )
    due_at: datetime
    overdue: bool


class RecommendationsOut(BaseModel):
    bought_together: list[BoughtTogetherOut]
    reminders: list[ReminderOut]


class NoteCreate(ApiModel):
    text: str = Field(min_length=1, max_length=5000)


class NoteOut(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    summary: str


class EventDetailOut(BaseModel):
    id: uuid.UUID
    kind: str
    occurred_at: datetime
    summary: str
    data: dict[str, Any]
    detail: dict[str, Any] = Field(
        description="What the event refers to: transcript, order lines, recording …"
    )


class EraseRequest(ApiModel):
    mode: ErasureMode = Field(
        description="erase deletes everything; anonymise keeps rows without the person."
    )
    confirm_shopper_id: uuid.UUID = Field(
        description="The shopper's id again, so a slip cannot erase someone."
    )


class EraseOut(BaseModel):
    shopper_id: uuid.UUID
    mode: ErasureMode
    counts: dict[str, int]
