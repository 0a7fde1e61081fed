"""The consultation capability's server→client events, one schema per event name.

Services build these payloads as plain JSON (``emit`` sends what it is given); the schemas
say what each event carries, for clients and for the tests that check every event sent."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import ConfigDict

from livedesk.consultations.chat_schemas import ChatMessageOut
from livedesk.consultations.schemas import ConsultationOut, QueuePosition
from livedesk.kit.outgoing import OutgoingEvent, Schemas
from livedesk.models import ConsultationKind

CONSULTATION_UPDATED = "consultation.updated"
OFFER_NEW = "offer.new"
OFFER_WITHDRAWN = "offer.withdrawn"
OFFER_MISSED = "offer.missed"
QUEUE_POSITION = "queue.position"
CHAT_MESSAGE = "chat.message"
CHAT_TYPING = "chat.typing"
CHAT_READ = "chat.read"


class ConsultationUpdated(ConsultationOut):
    """To the shopper's tabs, the assigned advisor's tabs and the supervisors' board."""

    model_config = ConfigDict(extra="forbid")


class OfferNew(ConsultationUpdated):
    """To the advisor offered the consultation (``offer_expires_at`` is set)."""

    offer_expires_at: datetime


class OfferWithdrawn(OutgoingEvent):
    consultation_id: uuid.UUID
    reason: Literal["abandoned", "declined", "timed out"]


class OfferMissed(OutgoingEvent):
    consultation_id: uuid.UUID
    shopper_id: uuid.UUID
    kind: ConsultationKind
    queued_at: datetime
    missed_at: datetime
    set_away: bool


class QueuePositionChanged(QueuePosition):
    model_config = ConfigDict(extra="forbid")


class ChatMessage(ChatMessageOut):
    model_config = ConfigDict(extra="forbid")


class ChatTyping(OutgoingEvent):
    consultation_id: uuid.UUID
    who: Literal["shopper", "advisor"]
    typing: bool


class ChatRead(OutgoingEvent):
    consultation_id: uuid.UUID
    reader: Literal["shopper", "staff"]
    seq: int


OUTGOING: Schemas = {
    CONSULTATION_UPDATED: ConsultationUpdated,
    OFFER_NEW: OfferNew,
    OFFER_WITHDRAWN: OfferWithdrawn,
    OFFER_MISSED: OfferMissed,
    QUEUE_POSITION: QueuePositionChanged,
    CHAT_MESSAGE: ChatMessage,
    CHAT_TYPING: ChatTyping,
    CHAT_READ: ChatRead,
}
