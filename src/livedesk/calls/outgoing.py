"""The calls capability's server→client events that go through the event sink, one schema
per event name. (The monitoring relays — ``monitor.*``, ``leg.moved`` — are sent by
``monitoring.py`` straight to the sockets concerned.)"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from livedesk.kit.outgoing import OutgoingEvent, Schemas

CALL_SIGNAL = "call.signal"


class CallSignal(OutgoingEvent):
    """To the other party only: the advisor's tabs when the shopper signals, and vice versa."""

    consultation_id: uuid.UUID
    type: Literal["offer", "answer", "candidate", "restart", "hangup"]
    data: dict[str, Any] | None
    sender: Literal["shopper", "advisor"] = Field(alias="from")


OUTGOING: Schemas = {CALL_SIGNAL: CallSignal}
