"""Call signalling: offer / answer / ICE candidate / restart / hang-up, relayed between the
parties of a consultation only, in the order sent (one client's events are handled in order,
and one emit per event keeps that order through Redis)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from livedesk.calls.outgoing import CALL_SIGNAL
from livedesk.consultations import service
from livedesk.identity import Actor, ShopperActor
from livedesk.kit.context import DB
from livedesk.kit.db import Outgoing
from livedesk.kit.errors import Conflict
from livedesk.models import Consultation, ConsultationStatus
from livedesk.realtime import rooms
from livedesk.realtime.protocol import EventContext, EventModel, EventSpec


class Signal(EventModel):
    consultation_id: uuid.UUID
    type: Literal["offer", "answer", "candidate", "restart", "hangup"]
    # SDP or candidate dict, opaque to the server; bounded by the event size limit.
    data: dict[str, Any] | None = Field(default=None)


def signal_recipient(c: Consultation, actor: Actor) -> tuple[rooms.Room, str]:
    """The other party: the advisor's tabs when the shopper signals, and vice versa."""
    if isinstance(actor, ShopperActor):
        assert c.advisor_id is not None
        return rooms.staff(c.advisor_id), rooms.STAFF_NS
    return rooms.shopper_of(c.shopper_id, c.id), rooms.SHOPPER_NS


async def relay(ctx: EventContext, payload: Signal) -> dict[str, Any]:
    async with ctx.app[DB].read() as session:
        c = await service.load_for_party(session, payload.consultation_id, ctx.actor, write=False)
    if c.status != ConsultationStatus.ACTIVE or c.advisor_id is None:
        raise Conflict("Signalling needs an active consultation", code="not_active")
    actor = ctx.actor
    if not isinstance(actor, ShopperActor) and actor.staff_id != c.advisor_id:
        raise Conflict("Only the assigned advisor signals this call", code="not_a_party")
    room, namespace = signal_recipient(c, actor)
    message = {
        "consultation_id": str(c.id),
        "type": payload.type,
        "data": payload.data,
        "from": "shopper" if isinstance(actor, ShopperActor) else "advisor",
    }
    # A relay, not state: no transaction to wait for, straight to the sink.
    await ctx.app[DB].sink()(Outgoing(CALL_SIGNAL, message, room, namespace))
    return {"relayed": True}


SHOPPER: list[EventSpec[Any]] = [EventSpec("call.signal", Signal, relay)]
STAFF: list[EventSpec[Any]] = [EventSpec("call.signal", Signal, relay)]
