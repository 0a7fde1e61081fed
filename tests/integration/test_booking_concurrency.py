"""No double booking under concurrency: 200 simultaneous attempts at one slot through the
real HTTP API, on each database — exactly one booking, 199 clean conflicts. And the
PostgreSQL exclusion constraint refuses an overlap even when the service is bypassed."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from livedesk.kit.db import Database
from livedesk.models import LIVE_BOOKING_STATUSES, Booking, BookingStatus, Role, Shopper
from livedesk.settings import Settings
from tests.integration.test_booking_api import booking_body, make_type, next_slot, set_hours

Client = TestClient[web.Request, web.Application]
ATTEMPTS = 200


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"booking_rate_limit": "10000/minute"})


async def test_two_hundred_attempts_at_one_slot_one_wins(
    client: Client, make_staff: Any, db: Database
) -> None:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR, timezone="Europe/London")
    ctype = await make_type(client, admin)
    await set_hours(client, advisor, timezone="Europe/London")
    start = next_slot(24 * 60)

    async def attempt(i: int) -> tuple[int, str]:
        body = booking_body(ctype["id"], start, advisor.id if i % 2 else None)
        body["contact"] = {"name": f"Shopper {i}", "email": f"racer-{i}-{uuid.uuid4().hex[:4]}@example.jp"}
        response = await client.post("/api/v1/bookings", json=body)
        data = await response.json()
        return response.status, ("ok" if response.status == 201 else data["error"]["code"])

    results = await asyncio.gather(*(attempt(i) for i in range(ATTEMPTS)))
    counts = Counter(results)
    assert counts[(201, "ok")] == 1, counts
    assert counts[(409, "slot_taken")] == ATTEMPTS - 1, counts
    async with db.read() as session:
        live = await session.scalar(
            select(func.count()).select_from(Booking).where(Booking.status.in_(LIVE_BOOKING_STATUSES))
        )
        # Nothing of a losing attempt was kept (its shopper profile rolled back with it).
        shoppers = await session.scalar(
            select(func.count()).select_from(Shopper).where(Shopper.email.like("racer-%"))
        )
    assert live == 1
    assert shoppers == 1


async def test_postgresql_exclusion_constraint_refuses_overlaps(
    db_kind: str, client: Client, make_staff: Any, db: Database
) -> None:
    if db_kind != "postgresql":
        # SQLite has no exclusion constraints; its guarantee is the serialised write
        # transaction the test above exercises.
        return
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR, timezone="UTC")
    ctype = await make_type(client, admin)
    await set_hours(client, advisor, timezone="UTC")
    start = next_slot(600)
    created = await client.post("/api/v1/bookings", json=booking_body(ctype["id"], start, advisor.id))
    assert created.status == 201
    booking_id = uuid.UUID((await created.json())["booking"]["id"])
    async with db.read() as session:
        existing = await session.get(Booking, booking_id)
        assert existing is not None
        shopper = existing.shopper_id

    def overlapping(status: BookingStatus, minutes: int) -> Booking:
        t = start + timedelta(minutes=minutes)
        return Booking(
            consultation_type_id=uuid.UUID(ctype["id"]),
            advisor_id=advisor.id,
            shopper_id=shopper,
            status=status,
            starts_at=t,
            ends_at=t + timedelta(minutes=30),
            block_start=t,
            block_end=t + timedelta(minutes=30),
            shopper_timezone="UTC",
            contact_email="x@example.jp",
            extra={},
        )

    with pytest.raises(IntegrityError, match="ex_bookings_advisor_block"):
        async with db.transaction() as session:
            session.add(overlapping(BookingStatus.CONFIRMED, 15))
    # Cancelled bookings hold no time; touching ranges ([a, b) then [b, c)) do not overlap.
    async with db.transaction() as session:
        session.add(overlapping(BookingStatus.CANCELLED, 15))
        session.add(overlapping(BookingStatus.CONFIRMED, 30))
