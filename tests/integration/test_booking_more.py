"""More booking behaviour on the real app: 5-minute slot steps from the setting, outgoing
webhooks for booking.created and booking.changed, and a mail that could not be delivered is
kept and retried (nothing lost)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from livedesk.booking import mails
from livedesk.booking.tokens import BookingTokens
from livedesk.kit.db import Database
from livedesk.kit.mail import Mailer
from livedesk.models import BookingMail, Role, WebhookDelivery, WebhookEndpoint
from livedesk.settings import Settings
from tests.conftest import SmtpInbox
from tests.integration.test_booking_api import booking_body, make_type, next_slot, set_hours

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "booking_slot_step_minutes": 5,
            "booking_rate_limit": "1000/minute",
            # Webhook rows are checked here, not delivered (the endpoint is a closed port).
            "webhook_poll_seconds": 0,
        }
    )


async def test_five_minute_steps(client: Client, make_staff: Any) -> None:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR, timezone="Asia/Tokyo")
    ctype = await make_type(client, admin, duration_minutes=20)
    await set_hours(
        client, advisor, weekly=[{"weekday": d, "start": "10:00", "end": "11:00"} for d in range(7)]
    )
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    slots = await (
        await client.get(
            f"/api/v1/booking/slots?type_id={ctype['id']}&start={day}&end={day}&timezone=Asia/Tokyo"
        )
    ).json()
    assert slots["step_minutes"] == 5
    times = [s["time"] for s in slots["slots"]]
    # 10:00 … 10:40 every five minutes (a 20-minute consultation ends by 11:00).
    assert times == [f"10:{m:02d}" for m in range(0, 45, 5)]
    start = datetime.fromisoformat(slots["slots"][1]["start"])
    booked = await client.post("/api/v1/bookings", json=booking_body(ctype["id"], start, advisor.id))
    assert booked.status == 201, await booked.text()
    # Off the five-minute grid is not a slot.
    odd = await client.post(
        "/api/v1/bookings", json=booking_body(ctype["id"], start + timedelta(minutes=32), advisor.id)
    )
    assert odd.status == 422
    assert (await odd.json())["error"]["code"] == "outside_hours"


async def test_webhooks_for_created_and_changed(client: Client, make_staff: Any, db: Database) -> None:
    async with db.transaction() as session:
        session.add(
            WebhookEndpoint(
                url="http://127.0.0.1:9/hook",
                secret="s" * 32,
                event_types=["booking.created", "booking.changed"],
            )
        )
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR, timezone="UTC")
    ctype = await make_type(client, admin)
    await set_hours(client, advisor, timezone="UTC")
    created = await (
        await client.post("/api/v1/bookings", json=booking_body(ctype["id"], next_slot(600), advisor.id))
    ).json()
    await client.post("/api/v1/bookings/cancel", json={"token": created["token"], "reason": "ill"})
    async with db.read() as session:
        rows = (await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at))).all()
    assert [r.event_type for r in rows] == ["booking.created", "booking.changed"]
    assert rows[0].payload["data"]["booking_id"] == created["booking"]["id"]
    assert rows[1].payload["data"]["change"] == "cancelled"
    assert rows[1].payload["data"]["reason"] == "ill"


async def test_undelivered_mail_is_kept_and_retried(
    client: Client, make_staff: Any, db: Database, settings: Settings, smtp_inbox: SmtpInbox
) -> None:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR, timezone="UTC")
    ctype = await make_type(client, admin)
    await set_hours(client, advisor, timezone="UTC")
    # This app has no SMTP server configured: the "please confirm" mail waits in the outbox.
    response = await client.post(
        "/api/v1/bookings", json=booking_body(ctype["id"], next_slot(600), advisor.id)
    )
    assert response.status == 201
    tokens = BookingTokens(settings.secret_key.get_secret_value())
    down = Mailer(
        settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": 9, "smtp_timeout_seconds": 2})
    )
    assert await mails.send_due(db, down, settings, tokens) == 0
    async with db.read() as session:
        row = (
            await session.scalars(select(BookingMail).where(BookingMail.kind == mails.BookingMailKind.VERIFY))
        ).one()
    assert row.sent_at is None
    assert row.attempts == 1
    assert "failed" in row.last_error
    assert row.claimed_until is not None
    # Its back-off passes; the server is back: it goes out, once.
    async with db.transaction() as session:
        await session.execute(
            update(BookingMail).values(claimed_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    up = Mailer(settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp_inbox.port}))
    assert await mails.send_due(db, up, settings, tokens) == 1
    assert await mails.send_due(db, up, settings, tokens) == 0
    assert len(smtp_inbox.messages) == 1
