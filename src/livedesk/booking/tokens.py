"""Signed booking links: one token per booking lets its holder (the shopper who got the
mail) see, reschedule, cancel and join that booking, and nothing else."""

from __future__ import annotations

import uuid

from itsdangerous import BadSignature, URLSafeSerializer

from livedesk.kit.errors import NotFound

_SALT = "livedesk.booking.v1"


class BookingTokens:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a secret key is needed to sign booking links")
        self._serializer = URLSafeSerializer(secret, salt=_SALT)

    def issue(self, booking_id: uuid.UUID) -> str:
        return self._serializer.dumps({"b": booking_id.hex})

    def verify(self, token: str) -> uuid.UUID:
        """The booking a token stands for; NotFound (``bad_token``) for anything we did not
        sign. A booking's link never expires by itself: the booking's state decides what
        it may still do."""
        try:
            data = self._serializer.loads(token)
            return uuid.UUID(hex=str(data["b"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            raise NotFound(
                "This booking link is not valid (check that it was copied whole)", code="bad_token"
            ) from None
