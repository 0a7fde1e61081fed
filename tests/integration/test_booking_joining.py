"""Joining a booked call through its link: early shoppers are told when it opens; at the
booked time the consultation goes to the booked advisor only, marked as a booked call;
attended and no-shows (either side) are settled once and land on the timeline."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from livedesk.booking import joining
from livedesk.kit.db import Database
from livedesk.models import Booking, BookingStatus, Role, TimelineEvent, TimelineKind
from livedesk.settings import Settings
from tests.integration.test_booking_api import book, booking_body, make_type, next_slot, set_hours

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "presence_grace_seconds": 0.0,
            "booking_join_early_minutes": 90,
            "booking_no_show_grace_minutes": 10,
            "booking_rate_limit": "1000/minute",
        }
    )


async def _world(client: Client, make_staff: Any) -> dict[str, Any]:
    admin = await make_staff(Role.ADMIN)
    booked = await make_staff(Role.ADVISOR, timezone="Europe/London")
    other = await make_staff(Role.ADVISOR, timezone="Europe/London")
    ctype = await make_type(client, admin, kind="voice")
    await set_hours(client, booked, timezone="Europe/London")
    await set_hours(client, other, timezone="Europe/London")
    return {"booked": booked, "other": other, "type": ctype}


async def _book(client: Client, world: dict[str, Any], minutes_ahead: int) -> dict[str, Any]:
    body = booking_body(world["type"]["id"], next_slot(minutes_ahead), world["booked"].id)
    return await book(client, body)


async def test_early_shopper_is_told_when_the_call_opens(client: Client, make_staff: Any) -> None:
    world = await _world(client, make_staff)
    created = await _book(client, world, 4 * 60)
    response = await client.post("/api/v1/bookings/join", json={"token": created["token"]})
    assert response.status == 200
    early = await response.json()
    assert early["status"] == "early"
    assert early["consultation_id"] is None
    assert early["visitor_token"] is None
    assert 2 * 3600 < early["seconds_to_open"] <= 3 * 3600 + 15 * 60
    bad = await client.post("/api/v1/bookings/join", json={"token": "forged.token.here"})
    assert bad.status == 404
    assert (await bad.json())["error"]["code"] == "bad_token"


async def test_booked_call_goes_to_the_booked_advisor_only(
    client: Client, make_staff: Any, live: Any, db: Database, settings: Settings
) -> None:
    world = await _world(client, make_staff)
    booked_console = await live.staff(world["booked"])
    other_console = await live.staff(world["other"])
    for console in (booked_console, other_console):
        await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    created = await _book(client, world, 20)
    token = created["token"]
    joined = await (await client.post("/api/v1/bookings/join", json={"token": token})).json()
    assert joined["status"] == "open"
    assert joined["visitor_token"]
    consultation_id = joined["consultation_id"]
    # The call page's socket, with the visitor token the join gave.
    shopper = await live.shopper(joined["visitor_token"])
    seen = await shopper.ok("consultation.get", {"consultation_id": consultation_id})
    assert seen["kind"] == "voice"
    assert seen["booking_id"] == created["booking"]["id"]
    offer = await booked_console.wait_for("offer.new")
    assert offer["id"] == consultation_id
    assert offer["booking_id"] == created["booking"]["id"]
    assert offer["nominated_advisor_id"] == str(world["booked"].id)
    assert offer["wait_for_nominated"] is True
    assert not other_console.received("offer.new")
    # A reload joins the same consultation.
    again = await (await client.post("/api/v1/bookings/join", json={"token": token})).json()
    assert again["consultation_id"] == consultation_id
    await booked_console.ok("offer.accept", {"consultation_id": consultation_id})
    async with db.transaction() as session:
        assert await joining.settle_bookings(session, settings) == 1
    async with db.read() as session:
        booking = await session.get(Booking, uuid.UUID(created["booking"]["id"]))
        assert booking is not None
        assert booking.status == BookingStatus.ATTENDED
        assert str(booking.consultation_id) == consultation_id
    # Settled once: another pass (another process) changes nothing.
    async with db.transaction() as session:
        assert await joining.settle_bookings(session, settings) == 0


async def test_no_shows_of_either_side_are_marked_after_the_grace_period(
    client: Client, make_staff: Any, db: Database, settings: Settings
) -> None:
    world = await _world(client, make_staff)
    absent_shopper = await _book(client, world, 20)
    absent_advisor = await _book(client, world, 50)
    joined = await (
        await client.post("/api/v1/bookings/join", json={"token": absent_advisor["token"]})
    ).json()
    assert joined["status"] == "open"
    async with db.read() as session:
        first = await session.get(Booking, uuid.UUID(absent_shopper["booking"]["id"]))
        second = await session.get(Booking, uuid.UUID(absent_advisor["booking"]["id"]))
        assert first is not None
        assert second is not None
    # Within the grace period nothing is marked.
    async with db.transaction() as session:
        assert (
            await joining.settle_bookings(session, settings, now=first.starts_at + timedelta(minutes=5)) == 0
        )
    later = second.starts_at + timedelta(minutes=11)
    async with db.transaction() as session:
        assert await joining.settle_bookings(session, settings, now=later) == 2
    async with db.read() as session:
        statuses = {
            str(b.id): b.status
            for b in (
                await session.scalars(select(Booking).where(Booking.id.in_([first.id, second.id])))
            ).all()
        }
        events = (
            await session.scalars(
                select(TimelineEvent.summary).where(
                    TimelineEvent.kind == TimelineKind.BOOKING, TimelineEvent.summary.like("No-show%")
                )
            )
        ).all()
    assert statuses[str(first.id)] == BookingStatus.NO_SHOW_SHOPPER
    assert statuses[str(second.id)] == BookingStatus.NO_SHOW_ADVISOR
    assert sorted(events) == [
        "No-show: the advisor did not take the call",
        "No-show: the shopper did not join",
    ]
    # A settled booking cannot be joined or cancelled any more.
    late = await client.post("/api/v1/bookings/join", json={"token": absent_shopper["token"]})
    assert late.status == 409
    assert (await late.json())["error"]["code"] == "booking_over"
    cancel = await client.post("/api/v1/bookings/cancel", json={"token": absent_shopper["token"]})
    assert cancel.status == 409


async def test_cancelled_booking_cannot_be_joined(client: Client, make_staff: Any) -> None:
    world = await _world(client, make_staff)
    created = await _book(client, world, 20)
    assert (await client.post("/api/v1/bookings/cancel", json={"token": created["token"]})).status == 200
    response = await client.post("/api/v1/bookings/join", json={"token": created["token"]})
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "booking_closed"
