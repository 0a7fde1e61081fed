"""Chat payloads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from livedesk.catalogue.schemas import SKU_PATTERN
from livedesk.consultations.chat_store import StoredMessage
from livedesk.models import Message, MessageKind
from livedesk.realtime.protocol import EventModel

MAX_TEXT = 4000


def json_time(value: datetime) -> str:
    """A UTC time as pydantic writes it in JSON (``…T10:00:00.123456Z``; no fraction when it is
    zero)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ProductRef(BaseModel):
    """What staff send for a product card: the SKU. Name, price, picture and link come from the
    catalogue (``catalogue/cards.py``); other fields are ignored, not refused, because a console
    tab's outbox from before this rule may still hold whole cards to re-send."""

    model_config = ConfigDict(extra="ignore")

    sku: str = Field(pattern=SKU_PATTERN)


class ChatSend(EventModel):
    consultation_id: uuid.UUID
    client_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    kind: MessageKind = MessageKind.TEXT
    body: str = Field("", max_length=MAX_TEXT)
    data: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _shape(self) -> ChatSend:
        if self.kind == MessageKind.EVENT:
            raise ValueError("kind 'event' is reserved for the server")
        if self.kind == MessageKind.TEXT and not self.body:
            raise ValueError("a text message needs a body")
        if self.kind in (MessageKind.IMAGE, MessageKind.FILE) and not (self.data or {}).get("file_id"):
            raise ValueError("an image or file message needs data.file_id (upload the file first)")
        if self.kind == MessageKind.PRODUCT:
            ProductRef.model_validate(self.data or {})
        return self

    @property
    def product_sku(self) -> str:
        """The SKU of a product card (the only field of one the server reads)."""
        return ProductRef.model_validate(self.data or {}).sku


class ChatSync(EventModel):
    consultation_id: uuid.UUID
    after_seq: int = Field(0, ge=0)


class ChatTyping(EventModel):
    consultation_id: uuid.UUID
    typing: bool


class ChatRead(EventModel):
    consultation_id: uuid.UUID
    seq: int = Field(ge=0)


class ChatMessageOut(BaseModel):
    id: uuid.UUID
    consultation_id: uuid.UUID
    seq: int
    client_id: str
    sender: str
    sender_staff_id: uuid.UUID | None
    kind: MessageKind
    body: str
    data: dict[str, Any]
    created_at: datetime

    @classmethod
    def of_stored(cls, m: StoredMessage) -> ChatMessageOut:
        return cls(
            id=m.id,
            consultation_id=m.consultation_id,
            seq=m.seq,
            client_id=m.client_id,
            sender=m.sender.value,
            sender_staff_id=m.sender_staff_id,
            kind=m.kind,
            body=m.body,
            data=m.data,
            created_at=m.created_at,
        )

    @staticmethod
    def json_of_stored(m: StoredMessage) -> dict[str, Any]:
        """``of_stored(m).model_dump(mode="json")``, built directly: this runs for every chat
        send, and the model costs more than the rest of the message's handling in Python (a
        test holds the two to the same output)."""
        return {
            "id": str(m.id),
            "consultation_id": str(m.consultation_id),
            "seq": m.seq,
            "client_id": m.client_id,
            "sender": m.sender.value,
            "sender_staff_id": str(m.sender_staff_id) if m.sender_staff_id is not None else None,
            "kind": m.kind.value,
            "body": m.body,
            "data": m.data,
            "created_at": json_time(m.created_at),
        }

    @classmethod
    def of(cls, m: Message) -> ChatMessageOut:
        return cls(
            id=m.id,
            consultation_id=m.consultation_id,
            seq=m.seq,
            client_id=m.client_id,
            sender=m.sender_kind.value,
            sender_staff_id=m.sender_staff_id,
            kind=m.kind,
            body=m.body,
            data=m.data,
            created_at=m.created_at,
        )
