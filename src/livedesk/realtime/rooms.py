"""Room names, from one place. Who receives an event is always one of these."""

from __future__ import annotations

import uuid

SHOPPER_NS = "/shopper"
# One room, or several (each socket in any of them gets the event once).
Room = str | list[str]
STAFF_NS = "/staff"


def consultation(consultation_id: uuid.UUID) -> str:
    """Every socket of every party to the consultation (both namespaces use the same name)."""
    return f"consultation:{consultation_id}"


def shopper(shopper_id: uuid.UUID) -> str:
    """All the shopper's open tabs."""
    return f"shopper:{shopper_id}"


def consultation_shopper(consultation_id: uuid.UUID) -> str:
    """The shopper's tabs that hold a token for this one consultation (a booked call's join):
    they hear of it and of nothing else of the shopper's."""
    return f"consultation-shopper:{consultation_id}"


def shopper_of(shopper_id: uuid.UUID, consultation_id: uuid.UUID) -> list[str]:
    """Every shopper tab that may hear of one consultation: the shopper's own tabs and the
    tabs scoped to it."""
    return [shopper(shopper_id), consultation_shopper(consultation_id)]


def staff(staff_id: uuid.UUID) -> str:
    """All of one staff member's open tabs."""
    return f"staff:{staff_id}"


def supervisors() -> str:
    """Supervisors and admins watching the live board."""
    return "supervisors"


def advisors() -> str:
    """Every connected advisor (queue changes they may pick up)."""
    return "advisors"
