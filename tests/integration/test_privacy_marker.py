"""Anonymise and erase remove every personal datum, proven by a marker.

One shopper is seeded through the real public APIs with a unique marker string in every field
the product stores about a person (profile, shop customer and visit, intake free text, chat
messages and a chat file's name and bytes, a booking's contact fields and cancel reason, the
post-call comment, advisor notes quoting them, the audit log of a file read …). After the
privacy request, a scan finds the marker nowhere: not in any text or JSON column of any table
(``Base.metadata.sorted_tables``, so a table added later is scanned without anyone listing
it), not in the export, not in any file under the data directory. A second shopper's marker
must survive, so the scan cannot pass by finding nothing at all.
"""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from livedesk.demo.surveys import demo_survey
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import Base, Booking, BookingMail, Role, SatisfactionInvitation
from livedesk.settings import Settings
from livedesk.surveys import service as surveys
from tests.conftest import SocketClient, StaffAccount, login, wait_until
from tests.integration.test_booking_api import make_type, next_slot, set_hours

Client = TestClient[web.Request, web.Application]

# Where the seeded shopper's marker must be found before the request: if seeding stops
# reaching one of these, the test says so instead of passing on an empty table.
SEEDED_TABLES = {
    "shoppers",
    "shopper_identities",
    "shopper_search_terms",
    "shopper_merges",
    "timeline_events",
    "channel_events",
    "consultations",
    "messages",
    "chat_files",
    "survey_responses",
    "satisfaction_responses",
    "satisfaction_invitations",
    "bookings",
    "booking_mails",
    "audit_log",
    "webhook_deliveries",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "booking_rate_limit": "1000/minute",
            "presence_grace_seconds": 0.0,
            "webhook_poll_seconds": 3600,
        }
    )


@pytest.fixture
async def anon(live: Any) -> AsyncIterator[aiohttp.ClientSession]:
    """The shopper's own HTTP client: no staff cookie rides along."""
    async with aiohttp.ClientSession(base_url=live.url + "/", cookie_jar=aiohttp.DummyCookieJar()) as http:
        yield http


def new_marker() -> str:
    # Lower-case letters and digits: survives e-mail and search-term normalisation unchanged.
    return "zq" + uuid.uuid4().hex[:14]


def png_quoting(text: str) -> bytes:
    """A valid 1×1 PNG whose tEXt chunk holds ``text`` (the file's bytes quote the person)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00\xff")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"tEXt", b"Comment\x00" + text.encode())
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


# --- the scan ---------------------------------------------------------------------------------


def _text_of(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


async def tables_quoting(db: Database, marker: str) -> dict[str, set[str]]:
    """Every table.column whose value contains ``marker`` (case-insensitive). Every column of
    every table is read, whatever its type: nothing is listed by hand."""
    found: dict[str, set[str]] = {}
    wanted = marker.lower()
    async with db.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).mappings():
                for column, value in row.items():
                    if value is not None and wanted in _text_of(value).lower():
                        found.setdefault(table.name, set()).add(column)
    return found


def files_quoting(root: Path, marker: str) -> list[str]:
    """Every file under ``root`` whose name or bytes contain ``marker``."""
    wanted = marker.lower().encode()
    hits = []
    for path in sorted(root.rglob("*")) if root.exists() else []:
        named = wanted in str(path.relative_to(root)).lower().encode()
        if named or (path.is_file() and wanted in path.read_bytes().lower()):
            hits.append(str(path))
    return hits


# --- seeding through the public APIs -----------------------------------------------------------


class World:
    def __init__(self, client: Client, live: Any, anon: aiohttp.ClientSession, db: Database) -> None:
        self.client, self.live, self.anon, self.db = client, live, anon, db

    async def as_staff(self, account: StaffAccount) -> dict[str, str]:
        self.client.session.cookie_jar.clear()
        return await login(self.client, account)

    async def shop_key(self, admin: StaffAccount) -> str:
        headers = await self.as_staff(admin)
        made = await self.client.post("/api/v1/integrations", json={"name": "web shop"}, headers=headers)
        assert made.status == 201, await made.text()
        integration = await made.json()
        key = await self.client.post(
            f"/api/v1/integrations/{integration['id']}/keys", json={"label": "prod"}, headers=headers
        )
        assert key.status == 201, await key.text()
        # Every event type goes to the outbox, so its payloads are scanned too.
        hook = await self.client.post(
            "/api/v1/webhooks/endpoints", json={"url": "https://hooks.example.com/livedesk"}, headers=headers
        )
        assert hook.status == 201, await hook.text()
        result: str = (await key.json())["key"]
        return result

    async def shop_customer(self, key: str, marker: str) -> uuid.UUID:
        bearer = {"Authorization": f"Bearer {key}"}
        customer = {"shop_customer_id": f"C-{marker}", "email": f"{marker}.shop@example.com"}
        put = await self.anon.put(
            f"/api/v1/shop/customers/C-{marker}",
            json={"display_name": f"Hana {marker}", "email": customer["email"]},
            headers=bearer,
        )
        assert put.status in (200, 201), await put.text()
        shopper_id = uuid.UUID((await put.json())["shopper_id"])
        order = {
            "customer": customer,
            "ordered_at": "2026-10-01T10:00:00+09:00",
            "lines": [
                {"sku": "SERUM-30", "name": "Hydrating serum", "quantity": 1, "unit_price_minor": 4800}
            ],
        }
        put = await self.anon.put(f"/api/v1/shop/orders/O-{uuid.uuid4().hex[:8]}", json=order, headers=bearer)
        assert put.status in (200, 201), await put.text()
        visit = {
            "customer": customer,
            "occurred_at": "2026-10-02T10:00:00+09:00",
            "store_name": "Ginza",
            "description": f"asked for {marker} at the counter",
            "data": {"said": f"call me {marker}"},
        }
        put = await self.anon.put(f"/api/v1/shop/events/V-{uuid.uuid4().hex[:8]}", json=visit, headers=bearer)
        assert put.status in (200, 201), await put.text()
        return shopper_id


async def seed_chat(
    w: World, marker: str, survey: dict[str, Any], console: SocketClient, supervisor: StaffAccount
) -> tuple[uuid.UUID, str]:
    """A visitor who answers the intake survey, chats (text and a file), is served, closed with
    notes and rates the call. Returns the visitor's profile and consultation id."""
    started = await w.anon.post("/api/v1/visitors", json={"display_name": f"Aiko {marker}"})
    assert started.status == 201, await started.text()
    visitor = await started.json()
    bearer = {"Authorization": f"Bearer {visitor['token']}"}
    answers = {"topic": "skincare", "note": f"my skin reacts to {marker}", "consent": True}
    intake = await w.anon.post(
        "/api/v1/intake-responses",
        json={"survey_id": survey["id"], "version": survey["version"], "answers": answers},
        headers=bearer,
    )
    assert intake.status == 201, await intake.text()
    shopper = await w.live.shopper(visitor["token"])
    joined = await shopper.ok(
        "queue.join", {"kind": "chat", "survey_response_id": (await intake.json())["response_id"]}
    )
    cid = joined["id"]
    await console.wait_for("offer.new", lambda o: o["id"] == cid)
    await console.ok("offer.accept", {"consultation_id": cid})
    await shopper.ok(
        "chat.send", {"consultation_id": cid, "client_id": "text-0001-abcd", "body": f"I am {marker}"}
    )
    await console.ok(
        "chat.send",
        {"consultation_id": cid, "client_id": "text-0002-abcd", "body": f"Hello {marker}, welcome"},
    )
    form = aiohttp.FormData()
    form.add_field("file", png_quoting(marker), filename=f"{marker}-rash.png", content_type="image/png")
    uploaded = await w.anon.post(f"/api/v1/consultations/{cid}/files", data=form, headers=bearer)
    assert uploaded.status == 201, await uploaded.text()
    file_out = await uploaded.json()
    await shopper.ok(
        "chat.send",
        {
            "consultation_id": cid,
            "client_id": "img-0001-abcd",
            "kind": "image",
            "data": {"file_id": file_out["id"]},
        },
    )
    # A supervisor's read is audited with the file's name.
    await w.as_staff(supervisor)
    read = await w.client.get(file_out["url"])
    assert read.status == 200
    await read.read()
    await shopper.ok("consultation.end", {"consultation_id": cid})
    await console.ok(
        "consultation.close", {"consultation_id": cid, "notes": f"{marker} prefers fragrance-free"}
    )
    rated = await w.anon.post(
        f"/api/v1/consultations/{cid}/satisfaction",
        json={"csat": 5, "nps": 9, "comment": f"thanks, {marker}"},
        headers=bearer,
    )
    assert rated.status == 201, await rated.text()
    return uuid.UUID(visitor["shopper_id"]), cid


async def seed_booking(
    w: World, marker: str, ctype: dict[str, Any], survey: dict[str, Any], advisor: Any
) -> str:
    """A booking with the marker in the contact fields and survey answer, then cancelled with
    a reason quoting it. Returns the booking id."""
    body = {
        "type_id": ctype["id"],
        "advisor_id": str(advisor.id),
        "start": next_slot(60 * 24).isoformat(),
        "timezone": "Asia/Tokyo",
        "locale": "en",
        "contact": {"name": f"Aiko {marker}", "email": f"{marker}@example.jp", "phone": "+81 90 1234 5678"},
        "survey": {
            "survey_id": survey["id"],
            "version": survey["version"],
            "answers": {"topic": "skincare", "note": f"booked by {marker}", "consent": True},
        },
    }
    made = await w.anon.post("/api/v1/bookings", json=body)
    assert made.status == 201, await made.text()
    created = await made.json()
    booking_id: str = created["booking"]["id"]
    # The advisor cancels, with a reason that quotes the shopper.
    headers = await w.as_staff(advisor)
    cancelled = await w.client.post(
        f"/api/v1/advisors/{advisor.id}/bookings/{booking_id}/cancel",
        json={"reason": f"{marker} has a cold"},
        headers=headers,
    )
    assert cancelled.status == 200, await cancelled.text()
    return booking_id


async def seed_everything(
    w: World, make_staff: Any, marker: str, control: str
) -> tuple[uuid.UUID, StaffAccount, list[str]]:
    """The shopper (three profiles merged into one) and a control shopper. Returns the live
    profile, an admin, and the ids of every profile that stood for the person."""
    admin = await make_staff(Role.ADMIN)
    supervisor = await make_staff(Role.SUPERVISOR)
    advisor = await make_staff(
        Role.ADVISOR, skills=["skincare"], languages=["ja", "en"], timezone="Asia/Tokyo"
    )
    ctype = await make_type(w.client, admin)
    await set_hours(w.client, advisor)
    async with w.db.transaction() as session:
        created = await surveys.create_survey(session, demo_survey(None), actor_id=None)
        await surveys.set_assignment(session, "instant", created.id)
        await surveys.set_assignment(session, ctype["id"], created.id)
    survey = {"id": str(created.id), "version": 1}
    key = await w.shop_key(admin)
    shop_profile = await w.shop_customer(key, marker)
    await w.shop_customer(key, control)

    console = await w.live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    visitor_profile, cid = await seed_chat(w, marker, survey, console, supervisor)
    await console.close()
    booking_id = await seed_booking(w, marker, ctype, survey, advisor)
    async with w.db.read() as session:
        booking = await session.get(Booking, uuid.UUID(booking_id))
        assert booking is not None
        booking_profile = booking.shopper_id

    # No public path writes these two: a mail server that refused the address (its error
    # quotes it), and the post-call invitation a booked consultation leaves behind.
    async with w.db.transaction() as session:
        await session.execute(
            update(BookingMail)
            .where(BookingMail.booking_id == uuid.UUID(booking_id))
            .values(last_error=f"550 <{marker}@example.jp>: mailbox unavailable")
        )
        session.add(
            SatisfactionInvitation(
                consultation_id=uuid.UUID(cid),
                email=f"{marker}@example.jp",
                last_error=f"<{marker}@example.jp>",
            )
        )

    headers = await w.as_staff(advisor)
    note = await w.client.post(
        f"/api/v1/shoppers/{visitor_profile}/notes", json={"text": f"called {marker} back"}, headers=headers
    )
    assert note.status == 201, await note.text()
    headers = await w.as_staff(supervisor)
    for other in {shop_profile, booking_profile} - {visitor_profile}:
        merged = await w.client.post(
            f"/api/v1/shoppers/{visitor_profile}/merge", json={"merge_id": str(other)}, headers=headers
        )
        assert merged.status == 200, await merged.text()
    ids = [str(i) for i in {visitor_profile, shop_profile, booking_profile}]
    return visitor_profile, admin, ids


@pytest.mark.parametrize("mode", ["anonymise", "erase"])
async def test_no_trace_of_the_marker_is_left(
    mode: str,
    client: Client,
    live: Any,
    anon: aiohttp.ClientSession,
    make_staff: Any,
    db: Database,
    settings: Settings,
) -> None:
    marker, control = new_marker(), new_marker()
    w = World(client, live, anon, db)
    shopper_id, admin, ids = await seed_everything(w, make_staff, marker, control)

    before = await tables_quoting(db, marker)
    assert set(before) >= SEEDED_TABLES, f"seeding missed {SEEDED_TABLES - set(before)}"
    assert files_quoting(settings.data_dir, marker), "the chat file's bytes should quote the marker"
    headers = await w.as_staff(admin)
    exported = await client.get(f"/api/v1/shoppers/{shopper_id}/export")
    assert marker in await exported.text()

    done = await client.post(
        f"/api/v1/shoppers/{shopper_id}/erase",
        json={"mode": mode, "confirm_shopper_id": str(shopper_id)},
        headers=headers,
    )
    assert done.status == 200, await done.text()

    assert await tables_quoting(db, marker) == {}
    # Nor in the database's own files: SQLite overwrites what it deletes (secure_delete) and
    # the erase empties the write-ahead log, which still held the old pages.
    if db.url.startswith("sqlite"):
        path = Path(db.url.split("///", 1)[1])
        for part in (path, Path(f"{path}-wal")):
            if part.exists():
                assert marker.lower().encode() not in part.read_bytes().lower(), part.name
    # Chat files go from storage after the commit.
    await wait_until(lambda: _no_files(settings.data_dir, marker))
    for profile in ids:
        response = await client.get(f"/api/v1/shoppers/{profile}/export")
        if mode == "erase":
            assert response.status == 404
        else:
            assert response.status == 200
            assert marker not in (await response.text()).lower()
    # Nothing queued will still go out to the person.
    async with db.read() as session:
        unsent = (await session.scalars(select(BookingMail.id).where(BookingMail.sent_at.is_(None)))).all()
    assert unsent == []
    # The other shopper is untouched: the scan is not vacuous, the request not too broad.
    assert {"shoppers", "shopper_identities", "channel_events"} <= set(await tables_quoting(db, control))


async def _no_files(root: Path, marker: str) -> bool:
    return not files_quoting(root, marker)


async def test_a_due_mail_is_not_sent_to_an_anonymised_shopper(
    client: Client, make_staff: Any, db: Database
) -> None:
    """Blanking the contact is not enough: a reminder already queued would go out to whatever
    the booking holds at send time, so anonymising drops the unsent mails."""
    marker = new_marker()
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR, timezone="Asia/Tokyo")
    ctype = await make_type(client, admin)
    await set_hours(client, advisor)
    body = {
        "type_id": ctype["id"],
        "advisor_id": str(advisor.id),
        "start": next_slot(60 * 24).isoformat(),
        "timezone": "Asia/Tokyo",
        "contact": {"name": marker, "email": f"{marker}@example.jp"},
    }
    made = await client.post("/api/v1/bookings", json=body)
    assert made.status == 201, await made.text()
    booking_id = uuid.UUID((await made.json())["booking"]["id"])
    async with db.transaction() as session:
        booking = await session.get(Booking, booking_id)
        assert booking is not None
        shopper_id = booking.shopper_id
        queued = (
            await session.scalars(select(BookingMail).where(BookingMail.booking_id == booking_id))
        ).all()
        assert queued
        assert all(m.sent_at is None for m in queued)
        # Make one due now: the next job pass would send it.
        queued[0].due_at = utcnow() - timedelta(minutes=1)
    headers = await login(client, admin)
    done = await client.post(
        f"/api/v1/shoppers/{shopper_id}/erase",
        json={"mode": "anonymise", "confirm_shopper_id": str(shopper_id)},
        headers=headers,
    )
    assert done.status == 200, await done.text()
    async with db.read() as session:
        booking = await session.get(Booking, booking_id)
        left = (await session.scalars(select(BookingMail).where(BookingMail.booking_id == booking_id))).all()
    assert booking is not None
    assert (booking.contact_name, booking.contact_email, booking.contact_phone) == ("", "", None)
    assert [m for m in left if m.sent_at is None] == []
