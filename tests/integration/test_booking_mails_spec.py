"""Booking mails to spec, through a real local SMTP server (aiosmtpd), read as a mail client
reads them: the email package for the MIME structure (text + HTML alternatives, the calendar
part with its charset), the ICS through two independent parsers (icalendar and vobject) that
must agree, the Message-ID in the public URL's domain, an ORGANIZER that is a person with no
RSVP asked, clean subjects, and a reschedule to the same time refused without a mail."""

from __future__ import annotations

import email.message
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import vobject
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from icalendar import Calendar
from sqlalchemy import select

from livedesk.app import create_app
from livedesk.kit.db import Database
from livedesk.models import Booking, BookingMail, Role
from livedesk.settings import Settings
from tests.conftest import SmtpInbox, wait_until
from tests.integration.test_booking_api import booking_body, make_type, next_slot, set_hours
from tests.integration.test_booking_mails import confirm_from_mail

Client = TestClient[web.Request, web.Application]
ADVISOR_EMAIL = "sakura.tanaka@hanami.example"


@pytest.fixture
def settings(settings: Settings, smtp_inbox: SmtpInbox) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_inbox.port,
            "mail_from": "Hanami Beauty <no-reply@hanami.example>",
            "public_url": "https://desk.hanami.example",
            "booking_job_seconds": 0.05,
            "booking_rate_limit": "1000/minute",
        }
    )


async def count(inbox: SmtpInbox, n: int) -> bool:
    return len(inbox.raw) >= n


async def book(
    client: Client,
    make_staff: Any,
    inbox: SmtpInbox,
    *,
    locale: str = "en",
    contact_name: str = "Emily Brown",
    name_en: str = "Skin check",
) -> dict[str, Any]:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(
        Role.ADVISOR, timezone="Asia/Tokyo", display_name="田中 さくら", email=ADVISOR_EMAIL
    )
    ctype = await make_type(client, admin, name_en=name_en)
    await set_hours(client, advisor)
    body = booking_body(
        ctype["id"],
        next_slot(3 * 24 * 60),
        advisor.id,
        locale=locale,
        timezone="Asia/Tokyo" if locale == "ja" else "Europe/London",
    )
    body["contact"] = {"name": contact_name, "email": "emily@example.co.uk"}
    response = await client.post("/api/v1/bookings", json=body)
    assert response.status == 201, await response.text()
    created = await confirm_from_mail(client, inbox, 1)
    await wait_until(lambda: count(inbox, 2))
    return created


def parts(message: email.message.EmailMessage) -> list[str]:
    return [p.get_content_type() for p in message.walk()]


def calendar_part(message: email.message.EmailMessage) -> email.message.EmailMessage:
    [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert isinstance(part, email.message.EmailMessage)
    return part


def both_parsers(ics_text: str) -> tuple[Any, Any]:
    """The VEVENT as icalendar and as vobject read it."""
    [event] = [c for c in Calendar.from_ical(ics_text).walk() if c.name == "VEVENT"]
    return event, vobject.readOne(ics_text).vevent


async def test_mime_structure_ics_charset_and_organizer(
    client: Client, make_staff: Any, smtp_inbox: SmtpInbox
) -> None:
    await book(client, make_staff, smtp_inbox, locale="ja", contact_name="佐藤 花子")
    verify, confirmation = smtp_inbox.parsed()
    # The "please confirm" mail: text and HTML, no calendar.
    assert parts(verify) == ["multipart/alternative", "text/plain", "text/html"]
    assert parts(confirmation) == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    part = calendar_part(confirmation)
    assert part.get_param("method") == "REQUEST"
    assert part.get_content_charset() == "utf-8"
    # Read as a client reads it: by the declared charset (without it, as ASCII: mojibake).
    ics_text = part.get_content()
    assert isinstance(ics_text, str)
    ical_event, vevent = both_parsers(ics_text)
    assert str(ical_event["SUMMARY"]) == vevent.summary.value == "肌診断"
    assert str(ical_event["UID"]) == vevent.uid.value
    assert int(ical_event["SEQUENCE"]) == int(vevent.sequence.value) == 0
    assert ical_event["DTSTART"].dt == vevent.dtstart.value
    assert ical_event["DTSTART"].dt.utcoffset() == vevent.dtstart.value.utcoffset()
    # ORGANIZER: the advisor, a person's address (never the no-reply sender).
    assert str(ical_event["ORGANIZER"]) == vevent.organizer.value == f"mailto:{ADVISOR_EMAIL}"
    assert ical_event["ORGANIZER"].params["CN"] == vevent.organizer.params["CN"][0] == "田中 さくら"
    # No RSVP asked: the shopper booked it; the attendee has accepted.
    assert ical_event["ATTENDEE"].params["RSVP"] == "FALSE"
    assert vevent.attendee.params["RSVP"] == ["FALSE"]
    assert ical_event["ATTENDEE"].params["PARTSTAT"] == vevent.attendee.params["PARTSTAT"][0] == "ACCEPTED"
    assert vevent.attendee.params["CN"] == ["佐藤 花子"]
    # Replies go to the advisor too; the Message-ID is in the public URL's domain.
    assert confirmation["Reply-To"] == ADVISOR_EMAIL
    for mail in (verify, confirmation):
        assert re.fullmatch(r"<[^@>\s]+@desk\.hanami\.example>", str(mail["Message-ID"])), mail["Message-ID"]
    html = confirmation.get_body(preferencelist=("html",))
    assert isinstance(html, email.message.EmailMessage)
    assert html.get_content_charset() == "utf-8"
    page = html.get_content()
    assert '<html lang="ja">' in page
    assert "佐藤 花子様" in page


async def test_html_escaped_and_subjects_clean(
    client: Client, make_staff: Any, smtp_inbox: SmtpInbox
) -> None:
    created = await book(
        client,
        make_staff,
        smtp_inbox,
        contact_name='Tom "T&J" O\'Neil',
        name_en="Skin  check & <care>",
    )
    token = created["token"]
    verify, confirmation = smtp_inbox.parsed()
    for mail in (verify, confirmation):
        subject = str(mail["Subject"])
        assert "  " not in subject, subject
        assert subject == subject.strip()
        assert "Skin check & <care>" in subject
    # No header line is folded into a mangled form, and none passes RFC 5322's hard limit.
    head = smtp_inbox.raw[1].split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    html = confirmation.get_body(preferencelist=("html",))
    assert isinstance(html, email.message.EmailMessage)
    page = html.get_content()
    assert "<care>" not in page
    assert "Tom &quot;T&amp;J&quot; O&#x27;Neil" in page
    assert "Skin  check &amp; &lt;care&gt;" in page
    assert f'href="https://desk.hanami.example/booking/?join={token}"' in page
    assert f'href="https://desk.hanami.example/booking/?manage={token}"' in page
    text = confirmation.get_body(preferencelist=("plain",))
    assert isinstance(text, email.message.EmailMessage)
    assert 'Dear Tom "T&J" O\'Neil' in text.get_content()


async def test_reply_to_setting_organises(make_staff: Any, smtp_inbox: SmtpInbox, settings: Settings) -> None:
    desk = settings.model_copy(update={"booking_reply_to": "Hanami Desk <desk@hanami.example>"})
    async with TestClient(TestServer(create_app(desk))) as client:
        await book(client, make_staff, smtp_inbox)
    _, confirmation = smtp_inbox.parsed()
    ical_event, vevent = both_parsers(calendar_part(confirmation).get_content())
    assert str(ical_event["ORGANIZER"]) == vevent.organizer.value == "mailto:desk@hanami.example"
    assert vevent.organizer.params["CN"] == ["田中 さくら"]  # the advisor's name, the desk's box
    assert confirmation["Reply-To"] == "desk@hanami.example"


async def test_reschedule_to_the_same_time_is_refused(
    client: Client, make_staff: Any, smtp_inbox: SmtpInbox, db: Database
) -> None:
    created = await book(client, make_staff, smtp_inbox)
    booking, token = created["booking"], created["token"]
    async with db.read() as session:
        mails_before = len((await session.scalars(select(BookingMail))).all())
    same = await client.post(
        "/api/v1/bookings/reschedule", json={"token": token, "start": booking["starts_at"]}
    )
    assert same.status == 422
    error = (await same.json())["error"]
    assert error["code"] == "same_start"
    assert "already starts at this time" in error["message"]
    async with db.read() as session:
        row = await session.get(Booking, uuid.UUID(booking["id"]))
        assert row is not None
        assert row.sequence == 0
        assert len((await session.scalars(select(BookingMail))).all()) == mails_before
    # A real move still goes through: SEQUENCE 1 in both parsers.
    later = datetime.fromisoformat(booking["starts_at"]) + timedelta(hours=1)
    moved = await client.post(
        "/api/v1/bookings/reschedule", json={"token": token, "start": later.isoformat()}
    )
    assert moved.status == 200, await moved.text()
    await wait_until(lambda: count(smtp_inbox, 3))
    assert len(smtp_inbox.raw) == 3  # nothing was sent for the refused one
    moved_mail = smtp_inbox.parsed()[2]
    assert str(moved_mail["Subject"]).startswith("Booking moved: Skin check, ")
    ical_event, vevent = both_parsers(calendar_part(moved_mail).get_content())
    assert int(ical_event["SEQUENCE"]) == int(vevent.sequence.value) == 1
    # The same instant and the same offset: both read the VTIMEZONE alike.
    assert ical_event["DTSTART"].dt == vevent.dtstart.value == later
    assert ical_event["DTSTART"].dt.utcoffset() == vevent.dtstart.value.utcoffset()
