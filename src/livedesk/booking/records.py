"""A booking's record: its timeline row and webhook for each change, and loading it.

Shared by the booking service, confirmation and joining (kept apart so that those modules
need not import one another).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.errors import NotFound
from livedesk.models import Booking, ConsultationType, TimelineKind
from livedesk.outbox import webhooks
from livedesk.timeline import append_event


def summary_data(booking: Booking, ctype: ConsultationType) -> dict[str, Any]:
    return {
        "booking_id": booking.id,
        "status": booking.status.value,
        "type_id": ctype.id,
        "type_name": ctype.name,
        "advisor_id": booking.advisor_id,
        "starts_at": booking.starts_at,
        "ends_at": booking.ends_at,
        "timezone": booking.shopper_timezone,
        "nominated": booking.nominated,
        "sequence": booking.sequence,
    }


async def record(
    session: AsyncSession,
    booking: Booking,
    ctype: ConsultationType,
    summary: str,
    *,
    webhook: str,
    actor: uuid.UUID | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Timeline row and outgoing webhook for a booking change, in the caller's transaction."""
    data = {**summary_data(booking, ctype), **(extra or {})}
    await append_event(
        session,
        booking.shopper_id,
        TimelineKind.BOOKING,
        summary,
        data,
        actor_staff_id=actor,
        consultation_id=booking.consultation_id,
        ref_id=str(booking.id),
    )
    await webhooks.enqueue(session, webhook, {**data, "shopper_id": booking.shopper_id})


async def load(session: AsyncSession, booking_id: uuid.UUID, *, lock: bool = False) -> Booking:
    booking = await session.get(Booking, booking_id, with_for_update=lock)
    if booking is None:
        # A correctly signed token for a booking that is gone (its shopper was erased).
        raise NotFound("This booking no longer exists", code="booking_not_found")
    return booking
