"""Who may act on a consultation: the one party rule, shared by every path that reads or
writes one (the ORM services, the chat writer's plain-SQL hot path, files, payments,
recordings and surveys, over REST and Socket.IO alike), so "is this caller a party" is
written once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from livedesk.identity.actors import Actor, ShopperActor
from livedesk.kit.errors import Forbidden
from livedesk.models import Consultation, Role

OVERSEERS = (Role.SUPERVISOR, Role.ADMIN)


@dataclass(frozen=True)
class Parties:
    """A consultation's parties, for paths that hold its ids rather than the row (the chat
    writer's plain SQL), and for things that belong to one (a recording, a payment, a file),
    whose party is never the advisor it is merely offered to (``offered_to_id`` None)."""

    id: uuid.UUID
    shopper_id: uuid.UUID
    advisor_id: uuid.UUID | None
    offered_to_id: uuid.UUID | None = None

    @classmethod
    def of(cls, c: Consultation, *, offered: bool = True) -> Parties:
        return cls(c.id, c.shopper_id, c.advisor_id, c.offered_to_id if offered else None)


def is_party(actor: Actor, consultation: Consultation | Parties, *, write: bool) -> bool:
    """The shopper (within their token's scope), the assigned advisor or the advisor it is
    offered to. Supervisors and admins may read any consultation (``write=False``) but act on
    none."""
    if isinstance(actor, ShopperActor):
        return actor.reaches(consultation.id, consultation.shopper_id)
    if actor.staff_id in (consultation.advisor_id, consultation.offered_to_id):
        return True
    return not write and actor.role in OVERSEERS


def authorise_party(
    actor: Actor, consultation: Consultation | Parties, *, write: bool, what: str = "consultation"
) -> None:
    """Refuse anyone who is not a party (``is_party``)."""
    if not is_party(actor, consultation, write=write):
        raise Forbidden(f"You are not a party to this {what}", code="not_a_party")
