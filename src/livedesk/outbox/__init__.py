"""The webhook outbox, a piece of the shared kernel: any capability calls
``webhooks.enqueue(session, event_type, payload)`` in the transaction of the fact it reports,
and the integrations capability (``integrations/delivery.py``) delivers the rows, signed.
The event types integrators may subscribe to are listed here, once."""

from livedesk.outbox.webhooks import (
    BOOKING_CHANGED,
    BOOKING_CREATED,
    CONSULTATION_CLOSED,
    EVENT_TYPES,
    PAYMENT_REFUNDED,
    PAYMENT_SUCCEEDED,
    RECORDING_READY,
    enqueue,
    sign,
    verify,
)

__all__ = [
    "BOOKING_CHANGED",
    "BOOKING_CREATED",
    "CONSULTATION_CLOSED",
    "EVENT_TYPES",
    "PAYMENT_REFUNDED",
    "PAYMENT_SUCCEEDED",
    "RECORDING_READY",
    "enqueue",
    "sign",
    "verify",
]
