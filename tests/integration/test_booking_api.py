"""The booking API on the real app and database: consultation types (admin), availability
(the advisor's own), slots, booking with identity resolution and the timeline, "any"
assignment, reschedule and cancel, clear errors and role denials."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from livedesk.booking.jobs import JOBS
from livedesk.kit.context import DB
from livedesk.kit.db import Database
from livedesk.models import Booking, EmailVerification, Role, Shopper, TimelineEvent, TimelineKind
from livedesk.settings import Settings
from tests.conftest import StaffAccount, login

Client = TestClient[web.Request, web.Application]
ALL_WEEK = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"booking_rate_limit": "1000/minute", "booking_reminder_minutes": [1440, 60]}
    )


async def make_type(client: Client, admin: StaffAccount, **fields: Any) -> dict[str, Any]:
    headers = await login(client, admin)
    body = {
        "name": "肌診断",
        "name_en": "Skin check",
        "duration_minutes": 30,
        "min_notice_minutes": 0,
        **fields,
    }
    response = await client.post("/api/v1/consultation-types", json=body, headers=headers)
    assert response.status == 201, await response.text()
    await client.post("/api/v1/auth/logout", headers=headers)
    result: dict[str, Any] = await response.json()
    return result


async def set_hours(
    client: Client,
    advisor: StaffAccount,
    timezone: str = "Asia/Tokyo",
    weekly: list[dict[str, Any]] | None = None,
) -> None:
    headers = await login(client, advisor)
    response = await client.put(
        f"/api/v1/advisors/{advisor.id}/availability",
        json={"timezone": timezone, "weekly": ALL_WEEK if weekly is None else weekly},
        headers=headers,
    )
    assert response.status == 200, await response.text()
    await client.post("/api/v1/auth/logout", headers=headers)


def next_slot(minutes_ahead: int = 120, step: int = 15) -> datetime:
    """A start on the 15-minute grid (advisors here work all day in whole-hour zones)."""
    t = datetime.now(UTC) + timedelta(minutes=minutes_ahead)
    t = t.replace(second=0, microsecond=0)
    return t + timedelta(minutes=(-t.minute) % step)


def booking_body(type_id: str, start: datetime, advisor_id: Any = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type_id": type_id,
        "advisor_id": None if advisor_id is None else str(advisor_id),
        "start": start.isoformat(),
        "timezone": "Europe/London",
        "locale": "en",
        "contact": {"name": "Aiko Tanaka", "email": f"aiko-{uuid.uuid4().hex[:6]}@example.jp"},
    }
    body.update(extra)
    return body


async def confirm(client: Client, created: dict[str, Any]) -> dict[str, Any]:
    """Open the "please confirm" mail's link, as the shopper would: the verification row is
    read from the database and its link token signed with the app's key (what the mail
    carries; ``test_identity_booking`` reads it from a real SMTP inbox instead)."""
    app = client.app
    async with app[DB].read() as session:
        verification_id = await session.scalar(
            select(EmailVerification.id).where(
                EmailVerification.booking_id == uuid.UUID(created["booking"]["id"])
            )
        )
    assert verification_id is not None, "the booking is not pending"
    token = app[JOBS].tokens.verification.issue(verification_id)
    response = await client.post("/api/v1/bookings/confirm", json={"token": token})
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def book(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    """Book and confirm: ``{"booking": …, "token": …}`` with the mailed links' token."""
    response = await client.post("/api/v1/bookings", json=body)
    assert response.status == 201, await response.text()
    return await confirm(client, await response.json())


@pytest.fixture
async def world(client: Client, make_staff: Any) -> dict[str, Any]:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(
        Role.ADVISOR, skills=["skincare"], languages=["ja", "en"], timezone="Asia/Tokyo"
    )
    ctype = await make_type(client, admin, required_skills=["skincare"])
    await set_hours(client, advisor)
    return {"admin": admin, "advisor": advisor, "type": ctype}


async def test_admin_manages_types_and_others_are_refused(client: Client, make_staff: Any) -> None:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR)
    created = await make_type(
        client, admin, price_amount=5500, deposit_amount=1000, currency="JPY", buffer_after_minutes=10
    )
    assert created["price_amount"] == 5500
    assert created["currency"] == "JPY"
    headers = await login(client, admin)
    patched = await client.patch(
        f"/api/v1/consultation-types/{created['id']}",
        json={"duration_minutes": 45, "active": False},
        headers=headers,
    )
    assert patched.status == 200
    assert (await patched.json())["duration_minutes"] == 45
    # A price with no currency, a deposit above the price: clear 422s.
    bad = await client.post(
        "/api/v1/consultation-types",
        json={"name": "x", "duration_minutes": 30, "price_amount": 100},
        headers=headers,
    )
    assert bad.status == 422
    assert "currency" in (await bad.json())["error"]["message"]
    worse = await client.post(
        "/api/v1/consultation-types",
        json={
            "name": "x",
            "duration_minutes": 30,
            "price_amount": 100,
            "deposit_amount": 200,
            "currency": "JPY",
        },
        headers=headers,
    )
    assert worse.status == 422
    # Switched off: gone from the public list, still in the admin list.
    public = await (await client.get("/api/v1/booking/types")).json()
    assert created["id"] not in [t["id"] for t in public["types"]]
    listed = await (await client.get("/api/v1/consultation-types")).json()
    assert created["id"] in [t["id"] for t in listed["types"]]
    await client.post("/api/v1/auth/logout", headers=headers)
    anonymous = await client.post("/api/v1/consultation-types", json={"name": "x"})
    assert anonymous.status == 401
    headers = await login(client, advisor)
    refused = await client.post(
        "/api/v1/consultation-types", json={"name": "x", "duration_minutes": 30}, headers=headers
    )
    assert refused.status == 403


async def test_availability_is_the_advisors_own(client: Client, make_staff: Any) -> None:
    advisor = await make_staff(Role.ADVISOR)
    other = await make_staff(Role.ADVISOR)
    headers = await login(client, advisor)
    body = {
        "timezone": "Europe/London",
        "weekly": [{"weekday": 0, "start": "09:00", "end": "17:30"}],
        "exceptions": [
            {"day": "2026-12-24", "kind": "off"},
            {"day": "2026-12-27", "kind": "extra", "start": "10:00", "end": "12:00"},
        ],
    }
    saved = await client.put(f"/api/v1/advisors/{advisor.id}/availability", json=body, headers=headers)
    assert saved.status == 200, await saved.text()
    out = await saved.json()
    assert out["timezone"] == "Europe/London"
    assert out["weekly"] == [{"weekday": 0, "start": "09:00", "end": "17:30"}]
    assert [e["kind"] for e in out["exceptions"]] == ["off", "extra"]
    foreign = await client.put(f"/api/v1/advisors/{other.id}/availability", json=body, headers=headers)
    assert foreign.status == 403
    assert (
        await client.get(f"/api/v1/advisors/{other.id}/bookings?start=2026-12-01&end=2026-12-02")
    ).status == 403
    bad_zone = await client.put(
        f"/api/v1/advisors/{advisor.id}/availability",
        json={**body, "timezone": "Mars/Olympus"},
        headers=headers,
    )
    assert bad_zone.status == 422
    assert (await bad_zone.json())["error"]["code"] == "bad_timezone"
    backwards = await client.put(
        f"/api/v1/advisors/{advisor.id}/availability",
        json={"timezone": "UTC", "weekly": [{"weekday": 0, "start": "17:00", "end": "09:00"}]},
        headers=headers,
    )
    assert backwards.status == 422
    assert "weekly.0" in (await backwards.json())["error"]["message"]


async def test_slots_in_the_shoppers_zone_for_one_advisor_and_any(
    client: Client, world: dict[str, Any]
) -> None:
    ctype = world["type"]
    advisor = world["advisor"]
    # A Tokyo advisor working 10:00–12:00 is 01:00–03:00 in London in winter.
    await set_hours(
        client, advisor, weekly=[{"weekday": d, "start": "10:00", "end": "12:00"} for d in range(7)]
    )
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    url = f"/api/v1/booking/slots?type_id={ctype['id']}&start={day}&end={day}&timezone=Europe/London"
    one = await (await client.get(url + f"&advisor={advisor.id}")).json()
    anyone = await (await client.get(url)).json()
    assert one["slots"] == anyone["slots"]
    times = [s["time"] for s in one["slots"]]
    london = ZoneInfo("Europe/London")
    offset = datetime(day.year, day.month, day.day, 12, tzinfo=london).utcoffset()
    first_hour = 1 if offset == timedelta(0) else 2
    assert times[0] == f"0{first_hour}:00"
    assert len(times) == 7
    first_start = datetime.fromisoformat(one["slots"][0]["start"])
    assert first_start.astimezone(ZoneInfo("Asia/Tokyo")).hour == 10
    assert first_start.astimezone(london).hour == first_hour
    # Unknown advisor, bad zone, unknown type, reversed range: clear errors.
    unknown = await client.get(url + f"&advisor={uuid.uuid4()}")
    assert unknown.status == 422
    assert (await unknown.json())["error"]["code"] == "unknown_advisor"
    garbage = await client.get(url + "&advisor=someone")
    assert garbage.status == 422
    bad_tz = await client.get(url.replace("Europe/London", "Europe/Londres"))
    assert bad_tz.status == 422
    assert (await bad_tz.json())["error"]["code"] == "bad_timezone"
    no_type = await client.get(url.replace(ctype["id"], str(uuid.uuid4())))
    assert no_type.status == 404
    assert (await no_type.json())["error"]["code"] == "unknown_type"
    reversed_range = await client.get(
        f"/api/v1/booking/slots?type_id={ctype['id']}&start={day}&end={day - timedelta(days=1)}&timezone=UTC"
    )
    assert reversed_range.status == 422


async def test_booking_resolves_the_shopper_and_lands_on_the_timeline(
    client: Client, world: dict[str, Any], db: Database
) -> None:
    start = next_slot()
    body = booking_body(world["type"]["id"], start, world["advisor"].id)
    body["contact"] = {"name": "Aiko Tanaka", "email": "Aiko@Example.jp", "phone": "090-1234-5678"}
    response = await client.post("/api/v1/bookings", json=body)
    assert response.status == 201, await response.text()
    pending = await response.json()
    assert pending["booking"]["status"] == "pending"
    assert pending["pending_until"] is not None
    created = await confirm(client, pending)
    booking = created["booking"]
    assert booking["status"] == "confirmed"
    assert booking["nominated"] is True
    assert booking["contact_email"] == "aiko@example.jp"
    assert booking["links"]["join"].endswith(f"/booking/?join={created['token']}")
    assert datetime.fromisoformat(booking["starts_at"]) == start
    # The same e-mail books again and confirms: the same shopper, two bookings on one timeline.
    again = await book(
        client,
        {
            **booking_body(world["type"]["id"], start + timedelta(hours=1)),
            "contact": {"email": "aiko@example.jp"},
        },
    )
    async with db.read() as session:
        # Each booking made a guest; the confirmations merged them into the address's profile.
        shoppers = (
            await session.scalars(
                select(Shopper).where(Shopper.email == "aiko@example.jp", Shopper.merged_into_id.is_(None))
            )
        ).all()
        assert len(shoppers) == 1
        assert shoppers[0].phone == "+819012345678"
        rows = (
            await session.scalars(
                select(TimelineEvent).where(
                    TimelineEvent.shopper_id == shoppers[0].id, TimelineEvent.kind == TimelineKind.BOOKING
                )
            )
        ).all()
    # "Booked (waiting …)" and "Booking confirmed by e-mail" for each.
    assert len(rows) == 4
    assert {r.ref_id for r in rows} == {booking["id"], again["booking"]["id"]}
    # The link shows the booking; a tampered link is refused.
    seen = await (await client.get(f"/api/v1/bookings/{created['token']}")).json()
    assert seen["id"] == booking["id"]
    tampered = await client.get(f"/api/v1/bookings/{created['token'][:-2]}xx")
    assert tampered.status == 404
    assert (await tampered.json())["error"]["code"] == "bad_token"


async def test_bad_booking_input_gets_clear_errors(client: Client, world: dict[str, Any]) -> None:
    type_id = world["type"]["id"]
    advisor = world["advisor"]

    async def error(body: dict[str, Any]) -> tuple[int, str]:
        response = await client.post("/api/v1/bookings", json=body)
        data = await response.json()
        return response.status, data["error"]["code"]

    past = next_slot(-120)
    assert await error(booking_body(type_id, past, advisor.id)) == (422, "slot_in_past")
    assert await error(booking_body(type_id, next_slot() + timedelta(minutes=7), advisor.id)) == (
        422,
        "outside_hours",
    )
    assert await error(booking_body(type_id, next_slot(), uuid.uuid4())) == (422, "unknown_advisor")
    assert await error({**booking_body(type_id, next_slot(), advisor.id), "timezone": "Nowhere/Land"}) == (
        422,
        "bad_timezone",
    )
    assert await error(booking_body(type_id, datetime.now(UTC) + timedelta(days=400), advisor.id)) == (
        422,
        "too_far",
    )
    naive = booking_body(type_id, next_slot(), advisor.id)
    naive["start"] = next_slot().replace(tzinfo=None).isoformat()
    assert await error(naive) == (422, "validation_failed")
    assert await error(
        {**booking_body(type_id, next_slot(), advisor.id), "contact": {"email": "not-mail"}}
    ) == (
        422,
        "validation_failed",
    )
    assert await error(booking_body(str(uuid.uuid4()), next_slot(), advisor.id)) == (404, "unknown_type")
    taken_at = next_slot(180)
    first = await client.post("/api/v1/bookings", json=booking_body(type_id, taken_at, advisor.id))
    assert first.status == 201
    assert await error(booking_body(type_id, taken_at, advisor.id)) == (409, "slot_taken")
    # A start inside the first booking's time is taken too, not "outside hours".
    assert await error(booking_body(type_id, taken_at + timedelta(minutes=15), advisor.id)) == (
        409,
        "slot_taken",
    )
    # Minimum notice.
    admin = world["admin"]
    strict = await make_type(client, admin, required_skills=["skincare"], min_notice_minutes=24 * 60)
    assert await error(booking_body(strict["id"], next_slot(), advisor.id)) == (422, "too_soon")


async def test_buffers_keep_bookings_apart(client: Client, world: dict[str, Any]) -> None:
    buffered = await make_type(client, world["admin"], required_skills=["skincare"], buffer_after_minutes=15)
    advisor = world["advisor"]
    start = next_slot(240)
    assert (
        await client.post("/api/v1/bookings", json=booking_body(buffered["id"], start, advisor.id))
    ).status == 201
    # 30 minutes + 15 buffer: the next start is 45 minutes on, not 30.
    close = await client.post(
        "/api/v1/bookings", json=booking_body(buffered["id"], start + timedelta(minutes=30), advisor.id)
    )
    assert close.status == 409
    ok = await client.post(
        "/api/v1/bookings", json=booking_body(buffered["id"], start + timedelta(minutes=45), advisor.id)
    )
    assert ok.status == 201, await ok.text()
    # The days the three starts fall on (late in the day, the last is tomorrow).
    london = ZoneInfo("Europe/London")
    first, last = start.astimezone(london).date(), (start + timedelta(minutes=90)).astimezone(london).date()
    slots = await (
        await client.get(
            f"/api/v1/booking/slots?type_id={buffered['id']}&start={first}&end={last}&timezone=Europe/London"
            f"&advisor={advisor.id}"
        )
    ).json()
    starts = {datetime.fromisoformat(s["start"]) for s in slots["slots"]}
    assert start not in starts
    assert start + timedelta(minutes=45) not in starts
    assert start + timedelta(minutes=90) in starts


async def test_any_goes_to_the_least_booked_then_round_robin(
    client: Client, make_staff: Any, db: Database
) -> None:
    admin = await make_staff(Role.ADMIN)
    ctype = await make_type(client, admin)
    advisors = [await make_staff(Role.ADVISOR, timezone="UTC") for _ in range(2)]
    for advisor in advisors:
        await set_hours(client, advisor, timezone="UTC")
    start = next_slot(300)
    # The first advisor already has a booking later on: "any" goes to the second.
    later = await client.post(
        "/api/v1/bookings", json=booking_body(ctype["id"], start + timedelta(hours=3), advisors[0].id)
    )
    assert later.status == 201
    first = await (await client.post("/api/v1/bookings", json=booking_body(ctype["id"], start))).json()
    assert first["booking"]["advisor_id"] == str(advisors[1].id)
    assert first["booking"]["nominated"] is False
    # Now both have one: the tie goes to the one whose last booking is older (advisor 0).
    second = await (
        await client.post("/api/v1/bookings", json=booking_body(ctype["id"], start + timedelta(hours=1)))
    ).json()
    assert second["booking"]["advisor_id"] == str(advisors[0].id)
    third = await (
        await client.post("/api/v1/bookings", json=booking_body(ctype["id"], start + timedelta(hours=2)))
    ).json()
    assert third["booking"]["advisor_id"] == str(advisors[1].id)
    # With one advisor busy at a time, "any" takes the other; with both busy it is taken.
    same_time = await (await client.post("/api/v1/bookings", json=booking_body(ctype["id"], start))).json()
    assert same_time["booking"]["advisor_id"] == str(advisors[0].id)
    full = await client.post("/api/v1/bookings", json=booking_body(ctype["id"], start))
    assert full.status == 409
    assert (await full.json())["error"]["code"] == "slot_taken"
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Booking)) == 5


async def test_reschedule_and_cancel_through_the_link(
    client: Client, world: dict[str, Any], db: Database
) -> None:
    advisor = world["advisor"]
    start = next_slot(300)
    created = await book(client, booking_body(world["type"]["id"], start, advisor.id))
    token = created["token"]
    blocker = await client.post(
        "/api/v1/bookings", json=booking_body(world["type"]["id"], start + timedelta(hours=2), advisor.id)
    )
    assert blocker.status == 201
    taken = await client.post(
        "/api/v1/bookings/reschedule",
        json={"token": token, "start": (start + timedelta(hours=2)).isoformat()},
    )
    assert taken.status == 409
    moved = await client.post(
        "/api/v1/bookings/reschedule",
        json={
            "token": token,
            "start": (start + timedelta(hours=1)).isoformat(),
            "timezone": "America/New_York",
        },
    )
    assert moved.status == 200, await moved.text()
    out = await moved.json()
    assert out["sequence"] == 1
    assert out["timezone"] == "America/New_York"
    assert datetime.fromisoformat(out["local_start"]).utcoffset() in (
        timedelta(hours=-5),
        timedelta(hours=-4),
    )
    # Moving onto its own old time is fine (it does not collide with itself).
    back = await client.post("/api/v1/bookings/reschedule", json={"token": token, "start": start.isoformat()})
    assert back.status == 200
    assert (await back.json())["sequence"] == 2
    cancelled = await client.post("/api/v1/bookings/cancel", json={"token": token, "reason": "plans changed"})
    assert cancelled.status == 200
    assert (await cancelled.json())["status"] == "cancelled"
    again = await client.post("/api/v1/bookings/cancel", json={"token": token})
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "booking_closed"
    # The time is free again.
    rebook = await client.post("/api/v1/bookings", json=booking_body(world["type"]["id"], start, advisor.id))
    assert rebook.status == 201
    async with db.read() as session:
        summaries = (
            await session.scalars(
                select(TimelineEvent.summary)
                .where(TimelineEvent.ref_id == created["booking"]["id"])
                .order_by(TimelineEvent.recorded_at)
            )
        ).all()
    assert summaries[0].startswith("Booked")
    assert summaries[-1].startswith("Booking cancelled")
    assert sum(s.startswith("Booking moved") for s in summaries) == 2
    bad = await client.post("/api/v1/bookings/cancel", json={"token": "not-a-token-at-all"})
    assert bad.status == 404
    assert (await bad.json())["error"]["code"] == "bad_token"


async def test_advisor_calendar_shows_own_bookings(
    client: Client, world: dict[str, Any], make_staff: Any
) -> None:
    advisor = world["advisor"]
    start = next_slot(300)
    await client.post("/api/v1/bookings", json=booking_body(world["type"]["id"], start, advisor.id))
    headers = await login(client, advisor)
    day = start.astimezone(ZoneInfo("Asia/Tokyo")).date()
    response = await client.get(
        f"/api/v1/advisors/{advisor.id}/bookings?start={day}&end={day}", headers=headers
    )
    assert response.status == 200
    calendar = await response.json()
    assert calendar["timezone"] == "Asia/Tokyo"
    assert [datetime.fromisoformat(b["starts_at"]) for b in calendar["bookings"]] == [start]
    await client.post("/api/v1/auth/logout", headers=headers)
    supervisor = await make_staff(Role.SUPERVISOR)
    await login(client, supervisor)
    seen = await client.get(f"/api/v1/advisors/{advisor.id}/bookings?start={day}&end={day}")
    assert seen.status == 200
    assert len((await seen.json())["bookings"]) == 1


async def test_staff_booking_routes_need_a_signed_in_staff_member(client: Client, make_staff: Any) -> None:
    advisor = await make_staff(Role.ADVISOR)
    for method, path in [
        ("GET", f"/api/v1/advisors/{advisor.id}/availability"),
        ("PUT", f"/api/v1/advisors/{advisor.id}/availability"),
        ("GET", f"/api/v1/advisors/{advisor.id}/bookings?start=2026-12-01&end=2026-12-02"),
        ("GET", "/api/v1/consultation-types"),
        ("PATCH", f"/api/v1/consultation-types/{uuid.uuid4()}"),
    ]:
        response = await client.request(method, path, json={})
        assert response.status == 401, (method, path, response.status)
        assert (await response.json())["error"]["code"] == "unauthenticated"
    # An advisor reads types in the console? No: the admin list is for admins and supervisors.
    await login(client, advisor)
    assert (await client.get("/api/v1/consultation-types")).status == 403


async def test_advisor_cancels_a_booking_in_own_calendar(
    client: Client, world: dict[str, Any], make_staff: Any
) -> None:
    advisor = world["advisor"]
    created = await (
        await client.post(
            "/api/v1/bookings", json=booking_body(world["type"]["id"], next_slot(300), advisor.id)
        )
    ).json()
    booking_id = created["booking"]["id"]
    other = await make_staff(Role.ADVISOR)
    headers = await login(client, other)
    foreign = await client.post(
        f"/api/v1/advisors/{advisor.id}/bookings/{booking_id}/cancel", json={}, headers=headers
    )
    assert foreign.status == 403
    # Their own calendar does not hold it either.
    not_theirs = await client.post(
        f"/api/v1/advisors/{other.id}/bookings/{booking_id}/cancel", json={}, headers=headers
    )
    assert not_theirs.status == 404
    await client.post("/api/v1/auth/logout", headers=headers)
    headers = await login(client, advisor)
    response = await client.post(
        f"/api/v1/advisors/{advisor.id}/bookings/{booking_id}/cancel",
        json={"reason": "unwell"},
        headers=headers,
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["status"] == "cancelled"
    again = await client.post(
        f"/api/v1/advisors/{advisor.id}/bookings/{booking_id}/cancel", json={}, headers=headers
    )
    assert again.status == 409
    # The shopper's link says so too.
    seen = await (await client.get(f"/api/v1/bookings/{created['token']}")).json()
    assert seen["status"] == "cancelled"
