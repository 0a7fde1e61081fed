"""Signed, expiring shopper tokens (itsdangerous), and the shop's signed customer ids.

A visitor token proves "this socket belongs to shopper X" without any account. The shop
proves a customer id with HMAC-SHA256 over "<customer id>:<unix time>" using the shared
LIVEDESK_SHOP_SIGNING_SECRET, so a shopper cannot claim someone else's history.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from livedesk.kit.errors import Unauthenticated

_SALT = "livedesk.visitor.v1"
# A shop signature older than this is refused (the page that carried it is long gone).
SHOP_SIGNATURE_MAX_AGE = 24 * 3600


@dataclass(frozen=True)
class VisitorClaims:
    """Who a visitor token stands for. A token with ``consultation_id`` (from joining a
    booked call) reaches that one consultation only, until ``expires_at`` (unix time), and is
    never renewed into a shopper-wide token."""

    shopper_id: uuid.UUID
    visitor_id: str
    consultation_id: uuid.UUID | None = None
    expires_at: int | None = None

    @property
    def scoped(self) -> bool:
        return self.consultation_id is not None


class VisitorTokens:
    def __init__(self, secret: str, max_age_seconds: int) -> None:
        if not secret:
            raise ValueError("a secret key is needed to sign visitor tokens")
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.max_age = max_age_seconds

    def issue(self, claims: VisitorClaims) -> str:
        data: dict[str, object] = {"s": str(claims.shopper_id), "v": claims.visitor_id}
        if claims.consultation_id is not None:
            data["c"] = str(claims.consultation_id)
        if claims.expires_at is not None:
            data["x"] = claims.expires_at
        return self._serializer.dumps(data)

    def verify(self, token: object) -> VisitorClaims:
        if not isinstance(token, str) or not token:
            raise Unauthenticated("A visitor token is required", code="token_missing")
        try:
            data = self._serializer.loads(token, max_age=self.max_age)
        except SignatureExpired:
            raise Unauthenticated("The visitor token has expired", code="token_expired") from None
        except BadSignature:
            raise Unauthenticated("The visitor token is not valid", code="token_invalid") from None
        try:
            scope = data.get("c")
            expires = data.get("x")
            claims = VisitorClaims(
                shopper_id=uuid.UUID(data["s"]),
                visitor_id=str(data["v"]),
                consultation_id=None if scope is None else uuid.UUID(str(scope)),
                expires_at=None if expires is None else int(expires),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise Unauthenticated("The visitor token is not valid", code="token_invalid") from None
        if claims.expires_at is not None and time.time() >= claims.expires_at:
            raise Unauthenticated("The visitor token has expired", code="token_expired")
        return claims


def sign_shop_customer_id(secret: str, customer_id: str, timestamp: int | None = None) -> str:
    """What the shop computes (documented for integrators): "<unix time>.<hex hmac>"."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{customer_id}:{ts}".encode(), hashlib.sha256).hexdigest()
    return f"{ts}.{mac}"


def verify_shop_signature(secret: str, customer_id: str, signature: str, now: float | None = None) -> bool:
    if not secret:
        return False
    ts_text, _, mac = signature.partition(".")
    if not ts_text.isdigit() or not mac:
        return False
    ts = int(ts_text)
    current = time.time() if now is None else now
    if abs(current - ts) > SHOP_SIGNATURE_MAX_AGE:
        return False
    expected = hmac.new(secret.encode(), f"{customer_id}:{ts}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, mac)
