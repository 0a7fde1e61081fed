"""Who is acting, for the rules that decide what they reach: one shopper rule for REST and
Socket.IO alike.

A shopper acts through a signed visitor token. A token made for one consultation (a booked
call's join) reaches that consultation only; any other token reaches the consultations of
the profile it stands for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass


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
