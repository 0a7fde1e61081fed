"""Signed booking links: one token per booking lets its holder (the shopper who got the
mail) see, reschedule, cancel and join that booking, and nothing else.

A token names the booking and its ``link_nonce``; confirming a pending booking changes the
nonce, so links handed out before the address was proven (the booking form's answer) stop
working and only the mailed links do. Links also stop ``LIVEDESK_BOOKING_LINK_DAYS`` after
the booking ends (``booking/service.load_by_token``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from livedesk.customers.verification import VerificationTokens
from livedesk.kit.errors import NotFound

_SALT = "livedesk.booking.v1"


@dataclass(frozen=True)
class LinkClaims:
    booking_id: uuid.UUID
    nonce: str


class BookingTokens:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a secret key is needed to sign booking links")
        self._serializer = URLSafeSerializer(secret, salt=_SALT)
        # The "confirm your booking" links, signed with the same secret under their own salt.
        self.verification = VerificationTokens(secret)

    def issue(self, booking_id: uuid.UUID, nonce: str = "") -> str:
        data = {"b": booking_id.hex}
        if nonce:
            data["n"] = nonce
        return self._serializer.dumps(data)

    def verify(self, token: str) -> LinkClaims:
        """What a token stands for; NotFound (``bad_token``) for anything we did not sign.
        Whether it still works is the booking's to say (nonce, expiry, state)."""
        try:
            data = self._serializer.loads(token)
            return LinkClaims(uuid.UUID(hex=str(data["b"])), str(data.get("n", "")))
        except (BadSignature, KeyError, TypeError, ValueError, AttributeError):
            raise NotFound(
                "This booking link is not valid (check that it was copied whole)", code="bad_token"
            ) from None
