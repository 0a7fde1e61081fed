"""Booking mails through a real local SMTP server (aiosmtpd): confirmation, reminders,
moved and cancelled, each with its ICS file (time zone, stable UID, SEQUENCE, METHOD) —
and reminders go out exactly once with two app processes sharing the database."""

from __future__ import annotations

import email.message
import re
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from icalendar import Calendar
from sqlalchemy import select, update

from livedesk.app import create_app
from livedesk.booking.jobs import JOBS
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import BookingMail, BookingMailKind, Role
from livedesk.settings import Settings
from tests.conftest import SmtpInbox, wait_until
from tests.integration.test_booking_api import booking_body, make_type, next_slot, set_hours

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def settings(settings: Settings, smtp_inbox: SmtpInbox) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_inbox.port,
            "mail_from": "Hanami Beauty <desk@hanami.example>",
            "public_url": "https://desk.hanami.example",
            "booking_job_seconds": 0.05,
            "booking_rate_limit": "1000/minute",
        }
    )


def calendar_of(message: email.message.EmailMessage) -> tuple[Calendar, email.message.EmailMessage]:
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1
    payload = parts[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    return Calendar.from_ical(payload), parts[0]  # type: ignore[return-value]


def event_of(calendar: Calendar) -> Any:
    (event,) = [c for c in calendar.walk() if c.name == "VEVENT"]
    return event


async def booked(
    client: Client, make_staff: Any, smtp_inbox: SmtpInbox, minutes_ahead: int = 3 * 24 * 60
) -> dict[str, Any]:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR, timezone="Asia/Tokyo", display_name="田中 さくら")
    ctype = await make_type(client, admin, name_en="Skin check")
    await set_hours(client, advisor)
    body = booking_body(ctype["id"], next_slot(minutes_ahead), advisor.id)
    body["contact"] = {"name": "Emily Brown", "email": "emily@example.co.uk"}
    response = await client.post("/api/v1/bookings", json=body)
    assert response.status == 201, await response.text()
    assert (await response.json())["booking"]["status"] == "pending"
    return await confirm_from_mail(client, smtp_inbox, 1)


CONFIRM_LINK = re.compile(r"https://desk\.hanami\.example/booking/\?confirm=(\S+)")


async def confirm_from_mail(client: Client, inbox: SmtpInbox, nth: int) -> dict[str, Any]:
    """Wait for the ``nth`` mail, a "please confirm" mail, and open its link as the shopper
    would: the answer holds the confirmed booking and its new link token."""
    await wait_until(lambda: _count(inbox, nth))
    mail = inbox.parsed()[nth - 1]
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_content()
    match = CONFIRM_LINK.search(text)
    assert match, text
    assert not [p for p in mail.walk() if p.get_content_type() == "text/calendar"]
    response = await client.post("/api/v1/bookings/confirm", json={"token": match.group(1)})
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def test_confirmation_moved_and_cancelled_mails_with_ics(
    client: Client, make_staff: Any, smtp_inbox: SmtpInbox
) -> None:
    created = await booked(client, make_staff, smtp_inbox)
    booking, token = created["booking"], created["token"]
    await wait_until(lambda: _count(smtp_inbox, 2))
    verify, confirmation = smtp_inbox.parsed()
    assert verify["To"] == "emily@example.co.uk"
    assert str(verify["Subject"]).startswith("Please confirm your booking: Skin check")
    assert confirmation["To"] == "emily@example.co.uk"
    assert str(confirmation["Subject"]).startswith("Booking confirmed: Skin check")
    body = next(p for p in confirmation.walk() if p.get_content_type() == "text/plain").get_content()
    assert f"https://desk.hanami.example/booking/?join={token}" in body
    assert f"https://desk.hanami.example/booking/?manage={token}" in body
    assert "Dear Emily Brown" in body
    assert "(Europe/London" in body
    calendar, part = calendar_of(confirmation)
    assert part.get_param("method") == "REQUEST"
    assert part.get_filename() == "invite.ics"
    assert str(calendar["METHOD"]) == "REQUEST"
    event = event_of(calendar)
    uid = str(event["UID"])
    assert uid == f"booking-{booking['id']}@livedesk"
    assert int(event["SEQUENCE"]) == 0
    assert event["DTSTART"].params["TZID"] == "Europe/London"
    assert event["DTSTART"].dt.isoformat() == booking["local_start"]
    assert [c.name for c in calendar.walk() if c.name == "VTIMEZONE"] == ["VTIMEZONE"]
    assert "mailto:emily@example.co.uk" in str(event["ATTENDEE"])

    start = event["DTSTART"].dt + timedelta(hours=1)
    moved = await client.post(
        "/api/v1/bookings/reschedule", json={"token": token, "start": start.isoformat()}
    )
    assert moved.status == 200, await moved.text()
    await wait_until(lambda: _count(smtp_inbox, 3))
    moved_mail = smtp_inbox.parsed()[2]
    assert str(moved_mail["Subject"]).startswith("Booking moved")
    moved_event = event_of(calendar_of(moved_mail)[0])
    assert str(moved_event["UID"]) == uid
    assert int(moved_event["SEQUENCE"]) == 1
    assert moved_event["DTSTART"].dt == start

    cancelled = await client.post("/api/v1/bookings/cancel", json={"token": token, "reason": "sorry"})
    assert cancelled.status == 200
    await wait_until(lambda: _count(smtp_inbox, 4))
    cancel_mail = smtp_inbox.parsed()[3]
    assert str(cancel_mail["Subject"]).startswith("Booking cancelled")
    cancel_calendar, cancel_part = calendar_of(cancel_mail)
    assert cancel_part.get_param("method") == "CANCEL"
    assert str(cancel_calendar["METHOD"]) == "CANCEL"
    cancel_event = event_of(cancel_calendar)
    assert str(cancel_event["UID"]) == uid
    assert int(cancel_event["SEQUENCE"]) == 2
    assert str(cancel_event["STATUS"]) == "CANCELLED"
    # The calendar file behind the link says the same.
    ics = await client.get(f"/api/v1/bookings/{token}/calendar.ics")
    assert ics.status == 200
    assert ics.content_type == "text/calendar"
    assert b"METHOD:CANCEL" in await ics.read()


async def test_japanese_mail_for_a_japanese_booking(
    client: Client, make_staff: Any, smtp_inbox: SmtpInbox
) -> None:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR, timezone="Asia/Tokyo", display_name="田中 さくら")
    ctype = await make_type(client, admin)
    await set_hours(client, advisor)
    body = booking_body(ctype["id"], next_slot(3000), advisor.id, locale="ja", timezone="Asia/Tokyo")
    body["contact"] = {"name": "佐藤 花子", "email": "hanako@example.jp"}
    assert (await client.post("/api/v1/bookings", json=body)).status == 201
    await confirm_from_mail(client, smtp_inbox, 1)
    await wait_until(lambda: _count(smtp_inbox, 2))
    verify, mail = smtp_inbox.parsed()
    assert str(verify["Subject"]).startswith("ご予約の確認をお願いします：肌診断")
    assert str(mail["Subject"]).startswith("ご予約を承りました：肌診断")
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_content()
    assert "佐藤 花子様" in text
    assert "担当: 田中 さくら" in text
    assert event_of(calendar_of(mail)[0])["DTSTART"].params["TZID"] == "Asia/Tokyo"


async def test_reminders_are_planned_and_replanned(
    client: Client, make_staff: Any, db: Database, smtp_inbox: SmtpInbox
) -> None:
    # Three hours ahead: the 24-hour reminder's moment has passed, the 1-hour one is queued.
    created = await booked(client, make_staff, smtp_inbox, minutes_ahead=180)
    async with db.read() as session:
        rows = (
            await session.scalars(select(BookingMail).where(BookingMail.kind == BookingMailKind.REMINDER))
        ).all()
    assert [(r.lead_minutes, r.sequence) for r in rows] == [(60, 0)]
    token = created["token"]
    new_start = next_slot(3 * 24 * 60)
    assert (
        await client.post(
            "/api/v1/bookings/reschedule", json={"token": token, "start": new_start.isoformat()}
        )
    ).status == 200
    async with db.read() as session:
        rows = (
            await session.scalars(
                select(BookingMail)
                .where(BookingMail.kind == BookingMailKind.REMINDER)
                .order_by(BookingMail.lead_minutes)
            )
        ).all()
    # The old reminder is gone; both new ones are for the new time (sequence 1).
    assert [(r.lead_minutes, r.sequence) for r in rows] == [(60, 1), (1440, 1)]
    assert rows[0].due_at == new_start - timedelta(minutes=60)


async def test_reminders_go_out_exactly_once_with_two_processes(
    client: Client, make_staff: Any, db: Database, settings: Settings, smtp_inbox: SmtpInbox
) -> None:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR, timezone="UTC")
    ctype = await make_type(client, admin)
    await set_hours(client, advisor, timezone="UTC")
    async with TestClient(TestServer(create_app(settings))) as second:
        apps = [client.app, second.app]
        bookings = 12
        first_start = next_slot(2 * 24 * 60)
        for i in range(bookings):
            body = booking_body(ctype["id"], first_start + timedelta(hours=i), advisor.id)
            # Booked through either process.
            response = await (client if i % 2 else second).post("/api/v1/bookings", json=body)
            assert response.status == 201, await response.text()
            # Confirmed through the link in its mail (the other process may send that mail).
            await confirm_from_mail(client, smtp_inbox, 2 * i + 1)
            await wait_until(lambda i=i: _count(smtp_inbox, 2 * i + 2))
        # A "please confirm" and a confirmation mail each.
        await wait_until(lambda: _count(smtp_inbox, bookings * 2))
        # Time passes: every reminder is due now, and both processes' jobs go for them.
        async with db.transaction() as session:
            await session.execute(
                update(BookingMail)
                .where(BookingMail.kind == BookingMailKind.REMINDER)
                .values(due_at=utcnow())
            )
        await wait_until(lambda: _count(smtp_inbox, bookings * 4), within=20)
        # Let both processes make several more passes: nothing more may go out.
        marks = [app[JOBS].passes for app in apps]

        async def both_passed_again() -> bool:
            return all(app[JOBS].passes >= mark + 3 for app, mark in zip(apps, marks, strict=True))

        await wait_until(both_passed_again)
        assert sum(app[JOBS].sent for app in apps) == bookings * 4
    subjects = [str(m["Subject"]) for m in smtp_inbox.parsed()]
    assert len(subjects) == bookings * 4
    reminders = [s for s in subjects if s.startswith("Reminder")]
    assert len(reminders) == bookings * 2
    async with db.read() as session:
        unsent = (await session.scalars(select(BookingMail).where(BookingMail.sent_at.is_(None)))).all()
    assert unsent == []


async def _count(inbox: SmtpInbox, n: int) -> bool:
    assert len(inbox.messages) <= n, [m["Subject"] for m in inbox.messages]
    return len(inbox.messages) == n
