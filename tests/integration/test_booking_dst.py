"""Slots through the API across the spring 2027 DST changes (US 14 March, UK 28 March):
a London advisor seen by New York and Tokyo shoppers, and a booking on the UK change day."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.test_utils import TestClient

from livedesk.models import Role
from tests.integration.test_booking_api import booking_body, make_type, set_hours

Client = TestClient[web.Request, web.Application]


async def _times(client: Client, type_id: str, advisor: Any, zone: str) -> dict[str, list[str]]:
    query = f"type_id={type_id}&advisor={advisor.id}&start=2027-03-12&end=2027-03-30&timezone={zone}"
    response = await client.get(f"/api/v1/booking/slots?{query}")
    assert response.status == 200, await response.text()
    by_day: dict[str, list[str]] = {}
    for slot in (await response.json())["slots"]:
        by_day.setdefault(slot["date"], []).append(slot["time"])
    return by_day


async def test_london_advisor_across_both_spring_changes(client: Client, make_staff: Any) -> None:
    admin = await make_staff(Role.ADMIN)
    london = await make_staff(Role.ADVISOR, timezone="Europe/London")
    ctype = await make_type(client, admin, duration_minutes=30, horizon_days=365)
    await set_hours(
        client,
        london,
        timezone="Europe/London",
        weekly=[{"weekday": d, "start": "09:00", "end": "09:30"} for d in range(7)],
    )
    new_york = await _times(client, ctype["id"], london, "America/New_York")
    assert new_york["2027-03-13"] == ["04:00"]  # both on winter time
    assert new_york["2027-03-15"] == ["05:00"]  # US on summer time, UK not yet
    assert new_york["2027-03-27"] == ["05:00"]
    assert new_york["2027-03-29"] == ["04:00"]  # both on summer time
    tokyo = await _times(client, ctype["id"], london, "Asia/Tokyo")
    assert tokyo["2027-03-27"] == ["18:00"]
    assert tokyo["2027-03-28"] == ["17:00"]  # the UK change day: 09:00 BST
    london_view = await _times(client, ctype["id"], london, "Europe/London")
    # To the advisor's own zone it is 09:00 every day of the 19, either side of the change.
    assert len(london_view) == 19
    assert all(times == ["09:00"] for times in london_view.values())

    # Book 09:00 on the change day: stored as 08:00 UTC, shown back in the shopper's zone.
    start = datetime(2027, 3, 28, 9, tzinfo=ZoneInfo("Europe/London"))
    body = booking_body(ctype["id"], start, london.id, timezone="Asia/Tokyo")
    response = await client.post("/api/v1/bookings", json=body)
    assert response.status == 201, await response.text()
    booking = (await response.json())["booking"]
    assert datetime.fromisoformat(booking["starts_at"]) == datetime(2027, 3, 28, 8, tzinfo=UTC)
    assert booking["local_start"] == "2027-03-28T17:00:00+09:00"
    # 09:00 GMT the day before is a different instant (09:00 UTC), also free.
    day_before = datetime(2027, 3, 27, 9, tzinfo=ZoneInfo("Europe/London"))
    assert day_before.astimezone(UTC).hour == 9
    again = await client.post("/api/v1/bookings", json=booking_body(ctype["id"], day_before, london.id))
    assert again.status == 201


async def test_new_york_advisor_seen_from_london_in_autumn_2027(client: Client, make_staff: Any) -> None:
    admin = await make_staff(Role.ADMIN)
    ny = await make_staff(Role.ADVISOR, timezone="America/New_York")
    ctype = await make_type(client, admin, duration_minutes=30, horizon_days=365)
    await set_hours(
        client,
        ny,
        timezone="America/New_York",
        weekly=[{"weekday": d, "start": "10:00", "end": "10:30"} for d in range(7)],
    )
    # Autumn 2027: UK back on 31 October, US on 7 November.
    query = f"type_id={ctype['id']}&advisor={ny.id}&start=2027-10-30&end=2027-11-08&timezone=Europe/London"
    slots = (await (await client.get(f"/api/v1/booking/slots?{query}")).json())["slots"]
    by_day = {s["date"]: s["time"] for s in slots}
    assert by_day["2027-10-30"] == "15:00"
    assert by_day["2027-11-01"] == "14:00"  # UK on winter time, US not yet
    assert by_day["2027-11-08"] == "15:00"
