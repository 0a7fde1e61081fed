"""Outgoing webhooks: the outbox and the signature (a piece of the shared kernel).

Any capability calls ``enqueue(session, event_type, payload)`` in the transaction of the
fact it reports; one outbox row per subscribed endpoint is written there, so a delivery
exists exactly when the fact was committed. The delivery job (``integrations/delivery.py``)
posts the rows later, signed, with retries.

Signatures, two schemes side by side on every post:

- ``Livedesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`` over ``f"{t}.{raw body}"``
  keyed with the endpoint's secret string (Stripe's scheme, so receivers know how to check it
  and refuse replays by the timestamp);
- the Standard Webhooks headers (https://www.standardwebhooks.com): ``webhook-id`` (the event
  id, the same on every retry), ``webhook-timestamp`` and ``webhook-signature: v1,<base64
  HMAC-SHA256>`` over ``f"{id}.{timestamp}.{raw body}"`` keyed with the base64-decoded part of
  the ``whsec_`` secret, so the standard libraries (``standardwebhooks`` and its ports)
  verify a delivery with the secret as shown.

During a secret rotation's overlap window both schemes carry one signature per secret (the
new one first): ``t=…,v1=<new>,v1=<old>`` and ``v1,<new> v1,<old>``, so a receiver still
holding the old secret keeps verifying until it switches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.clock import utcnow
from livedesk.models.integrations import DeliveryStatus, WebhookDelivery, WebhookEndpoint

CONSULTATION_CLOSED = "consultation.closed"
BOOKING_CREATED = "booking.created"
BOOKING_CHANGED = "booking.changed"
PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_REFUNDED = "payment.refunded"
RECORDING_READY = "recording.ready"
EVENT_TYPES: tuple[str, ...] = (
    CONSULTATION_CLOSED,
    BOOKING_CREATED,
    BOOKING_CHANGED,
    PAYMENT_SUCCEEDED,
    PAYMENT_REFUNDED,
    RECORDING_READY,
)

SIGNATURE_HEADER = "Livedesk-Signature"
EVENT_ID_HEADER = "Livedesk-Event-Id"
EVENT_TYPE_HEADER = "Livedesk-Event-Type"
# Standard Webhooks (lower-case as the spec writes them; HTTP header names are case-blind).
STD_ID_HEADER = "webhook-id"
STD_TIMESTAMP_HEADER = "webhook-timestamp"
STD_SIGNATURE_HEADER = "webhook-signature"
# Sent by "send test event" to one endpoint only; never enqueued for facts.
TEST_EVENT = "webhook.test"
# A receiver should refuse signatures older than this (replays).
DEFAULT_TOLERANCE_SECONDS = 300


async def enqueue(session: AsyncSession, event_type: str, payload: Mapping[str, Any]) -> None:
    """Queue ``event_type`` with ``payload`` for every active endpoint subscribed to it.

    Writes the outbox rows in the caller's transaction (nothing is committed here): they are
    delivered only if that transaction commits, and are never lost once it has. ``payload``
    must be JSON-serialisable (UUIDs, datetimes and enums become strings). ValueError for an
    event type not in ``EVENT_TYPES``. Endpoints with no event types listed receive all.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}; expected one of {EVENT_TYPES}")
    try:
        data = to_jsonable_python(dict(payload))
    except PydanticSerializationError as exc:
        raise TypeError(f"webhook payload must be JSON-serialisable: {exc}") from None
    endpoints = (await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True)))).all()
    targets = [e for e in endpoints if not e.event_types or event_type in e.event_types]
    if not targets:
        return
    event_id = uuid.uuid4()
    now = utcnow()
    envelope = {"id": str(event_id), "type": event_type, "created_at": now.isoformat(), "data": data}
    session.add_all(
        WebhookDelivery(
            id=uuid.uuid4(),
            endpoint_id=endpoint.id,
            event_id=event_id,
            event_type=event_type,
            payload=envelope,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            last_error="",
            created_at=now,
        )
        for endpoint in targets
    )


def body_of(delivery: WebhookDelivery) -> bytes:
    """The exact bytes posted (and signed) for a delivery."""
    return json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: str, body: bytes, timestamp: int | None = None, *, also: Sequence[str] = ()) -> str:
    """The ``Livedesk-Signature`` header value for ``body``; ``also``: further secrets (a
    rotation's old one) that sign it too, one more ``v1=`` each."""
    t = int(time.time()) if timestamp is None else timestamp
    macs = [
        hmac.new(key.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest() for key in (secret, *also)
    ]
    return f"t={t}," + ",".join(f"v1={mac}" for mac in macs)


def standard_key(secret: str) -> bytes:
    """The HMAC key of the Standard Webhooks signature: the base64 after ``whsec_``, decoded
    exactly as the reference library does (lenient, padding added). New secrets are standard
    base64; a secret made before (URL-safe base64) decodes the same way in the reference
    library, and rotating it gives one that every port reads alike."""
    rest = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(rest + "==")
    except (binascii.Error, ValueError):
        key = b""
    return key or secret.encode()


def standard_signature(
    secret: str, msg_id: str, timestamp: int, body: bytes, *, also: Sequence[str] = ()
) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64>`` per secret, space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(standard_key(key), signed, hashlib.sha256).digest()).decode()
        for key in (secret, *also)
    )


def signed_headers(
    secret: str, event_id: str, body: bytes, *, also: Sequence[str] = (), timestamp: int | None = None
) -> dict[str, str]:
    """Both signature schemes for one post (one timestamp for both)."""
    t = int(time.time()) if timestamp is None else timestamp
    return {
        SIGNATURE_HEADER: sign(secret, body, t, also=also),
        STD_ID_HEADER: event_id,
        STD_TIMESTAMP_HEADER: str(t),
        STD_SIGNATURE_HEADER: standard_signature(secret, event_id, t, body, also=also),
    }


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: int | None = None,
) -> bool:
    """What a receiver does: True when ``header`` signs ``body`` with ``secret`` and is no
    older than ``tolerance`` seconds."""
    pairs = [part.split("=", 1) for part in header.split(",") if "=" in part]
    try:
        [t] = [int(value) for key, value in pairs if key == "t"]
    except ValueError:
        return False
    current = int(time.time()) if now is None else now
    if abs(current - t) > tolerance:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    # Any of the signatures (one per secret during a rotation's overlap).
    return any(hmac.compare_digest(expected, value) for key, value in pairs if key == "v1")
