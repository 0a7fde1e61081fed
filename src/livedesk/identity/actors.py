"""Who is acting: a shopper (by their signed visitor token) or a signed-in staff member with a
role. REST routes and Socket.IO handlers build the same ``Actor`` and hand it to services;
services never see a request or a socket (``consultations/parties.py`` holds the one rule of
who is a party to a consultation).

A shopper acts through a signed visitor token. A token made for one consultation (a booked
call's join) reaches that consultation only; any other token reaches the consultations of
the profile it stands for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ShopperActor:
    shopper_id: uuid.UUID
    visitor_id: str = ""
    # Set for a token that may reach this one consultation and nothing else.
    consultation_id: uuid.UUID | None = None

    @property
    def scoped(self) -> bool:
        return self.consultation_id is not None

    def reaches(self, consultation_id: uuid.UUID, consultation_shopper_id: uuid.UUID) -> bool:
        """The one rule: the consultation is this shopper's, and inside the token's scope."""
        return consultation_shopper_id == self.shopper_id and (
            self.consultation_id is None or self.consultation_id == consultation_id
        )


class StaffActor(Protocol):
    """A signed-in staff member: what the rules need of one. The session's principal
    (``staff/sessions.Principal``) is one; a protocol, because roles are a model enum and
    ``kit`` sits below the models."""

    @property
    def staff_id(self) -> uuid.UUID: ...

    @property
    def role(self) -> str: ...


Actor = ShopperActor | StaffActor


def staff_of(actor: Actor) -> uuid.UUID | None:
    """The acting staff member's id, or None for a shopper (for timeline and audit rows)."""
    return None if isinstance(actor, ShopperActor) else actor.staff_id


def key_of(actor: Actor) -> str:
    """A stable key per actor, for rate limits."""
    return f"shopper:{actor.shopper_id}" if isinstance(actor, ShopperActor) else f"staff:{actor.staff_id}"
