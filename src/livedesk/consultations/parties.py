"""Chat's rules on top of the one party rule (``identity.parties``): when a chat is open,
and who may write in it."""

from __future__ import annotations

import uuid

from livedesk.identity import Actor, ShopperActor
from livedesk.kit.errors import Conflict
from livedesk.models import ConsultationStatus

# Chat stays open through wrap-up so the advisor can send a last link; closed is closed.
CHAT_OPEN = (
    ConsultationStatus.QUEUED,
    ConsultationStatus.OFFERED,
    ConsultationStatus.ACTIVE,
    ConsultationStatus.WRAP_UP,
)


def authorise_chat_send(actor: Actor, status: ConsultationStatus, advisor_id: uuid.UUID | None) -> None:
    """A new message needs an open chat, and on the staff side the assigned advisor (an
    advisor merely offered the consultation reads it but does not write yet)."""
    if status not in CHAT_OPEN:
        raise Conflict(f"The consultation is {status.value}; chat is closed", code="chat_closed")
    if not isinstance(actor, ShopperActor) and actor.staff_id != advisor_id:
        raise Conflict("Only the assigned advisor writes in this chat", code="not_a_party")
