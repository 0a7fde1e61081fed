"""Outgoing webhooks: the outbox and the signature (a piece of the shared kernel).

Any capability calls ``enqueue(session, event_type, payload)`` in the transaction of the
fact it reports; one outbox row per subscribed endpoint is written there, so a delivery
exists exactly when the fact was committed. The delivery job (``integrations/delivery.py``)
posts the rows later, signed, with retries.

Signature: header ``Livedesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`` over
``f"{t}.{raw body}"`` with the endpoint's secret (the same scheme as Stripe's, so receivers
know how to check it and refuse replays by the timestamp).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
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


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Livedesk-Signature`` header value for ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


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
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    current = int(time.time()) if now is None else now
    if abs(current - t) > tolerance:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
