"""Room names, from one place. Who receives an event is always one of these."""

from __future__ import annotations

import uuid

SHOPPER_NS = "/shopper"
STAFF_NS = "/staff"


def consultation(consultation_id: uuid.UUID) -> str:
    """Every socket of every party to the consultation (both namespaces use the same name)."""
    return f"consultation:{consultation_id}"


def shopper(shopper_id: uuid.UUID) -> str:
    """All the shopper's open tabs."""
    return f"shopper:{shopper_id}"


def staff(staff_id: uuid.UUID) -> str:
    """All of one staff member's open tabs."""
    return f"staff:{staff_id}"


def supervisors() -> str:
    """Supervisors and admins watching the live board."""
    return "supervisors"


def advisors() -> str:
    """Every connected advisor (queue changes they may pick up)."""
    return "advisors"
