"""Who may act on a consultation: pure rules, shared by every path that reads or writes one
(the ORM services and the chat writer's plain-SQL hot path), so the rules live in one place."""

from __future__ import annotations

import uuid

from livedesk.kit.errors import Conflict, Forbidden
from livedesk.models import ConsultationStatus, Role
from livedesk.realtime.protocol import EventContext

# Chat stays open through wrap-up so the advisor can send a last link; closed is closed.
CHAT_OPEN = (
    ConsultationStatus.QUEUED,
    ConsultationStatus.OFFERED,
    ConsultationStatus.ACTIVE,
    ConsultationStatus.WRAP_UP,
)


def authorise_party(
    ctx: EventContext,
    consultation_id: uuid.UUID,
    shopper_id: uuid.UUID,
    advisor_id: uuid.UUID | None,
    offered_to_id: uuid.UUID | None,
    *,
    write: bool,
) -> None:
    """The socket's owner must be a party: the shopper, the assigned advisor or the advisor it
    is offered to. Supervisors and admins may read any consultation but act on none here.
    A shopper's token may be scoped to one consultation (``ShopperActor.reaches``)."""
    if ctx.shopper is not None:
        if not ctx.shopper.reaches(consultation_id, shopper_id):
            raise Forbidden("You are not a party to this consultation", code="not_a_party")
        return
    staff = ctx.require_staff()
    if staff.staff_id in (advisor_id, offered_to_id):
        return
    if not write and staff.role in (Role.SUPERVISOR, Role.ADMIN):
        return
    raise Forbidden("You are not a party to this consultation", code="not_a_party")


def authorise_chat_send(ctx: EventContext, status: ConsultationStatus, advisor_id: uuid.UUID | None) -> None:
    """A new message needs an open chat, and on the staff side the assigned advisor (an
    advisor merely offered the consultation reads it but does not write yet)."""
    if status not in CHAT_OPEN:
        raise Conflict(f"The consultation is {status.value}; chat is closed", code="chat_closed")
    if ctx.staff is not None and ctx.staff.staff_id != advisor_id:
        raise Conflict("Only the assigned advisor writes in this chat", code="not_a_party")
