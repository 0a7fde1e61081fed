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
    shopper_id: uuid.UUID
    visitor_id: str


class VisitorTokens:
    def __init__(self, secret: str, max_age_seconds: int) -> None:
        if not secret:
            raise ValueError("a secret key is needed to sign visitor tokens")
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.max_age = max_age_seconds

    def issue(self, claims: VisitorClaims) -> str:
        return self._serializer.dumps({"s": str(claims.shopper_id), "v": claims.visitor_id})

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
            return VisitorClaims(shopper_id=uuid.UUID(data["s"]), visitor_id=str(data["v"]))
        except (KeyError, TypeError, ValueError):
            raise Unauthenticated("The visitor token is not valid", code="token_invalid") from None


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
