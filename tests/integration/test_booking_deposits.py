"""Deposits and prices taken at booking, on the sandbox (test mode): the booking is pending
until the money is paid or held, then confirmed; cancel refunds (charge) or releases (hold); a
no-show captures a hold; an unpaid booking lapses and its payment is dropped; JPY amounts are
exact yen. Real app, real database (SQLite and PostgreSQL), the real booking and deposits
jobs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select, update

from livedesk.booking.jobs import JOBS
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB
from livedesk.models import Booking, BookingPayment, BookingStatus, Role, TimelineEvent, TimelineKind
from livedesk.payments.deposit_jobs import DEPOSIT_JOBS
from livedesk.settings import Settings
from tests.conftest import login, wait_until
from tests.integration.test_booking_api import Client, booking_body, confirm, make_type, next_slot, set_hours


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    # Bookings here are confirmed without a mail link, except in the test about both.
    by_mail = request.node.name.startswith("test_an_anonymous_booking_waits")
    return settings.model_copy(
        update={
            "booking_rate_limit": "1000/minute",
            "booking_confirm_by_mail": by_mail,
            "booking_job_seconds": 0.2,
        }
    )


async def world(client: Client, make_staff: Any, **type_fields: Any) -> dict[str, Any]:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR, languages=["ja", "en"], timezone="Asia/Tokyo")
    ctype = await make_type(client, admin, currency="JPY", **type_fields)
    await set_hours(client, advisor)
    return {"type": ctype, "advisor": advisor}


async def post(client: Client, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with client.post(path, json=body) as response:
        return response.status, await response.json()


async def booking_of(client: Client, token: str) -> dict[str, Any]:
    async with client.get(f"/api/v1/bookings/{token}") as response:
        assert response.status == 200
        result: dict[str, Any] = await response.json()
        return result


async def payment_row(client: Client, booking_id: str) -> BookingPayment:
    async with client.app[DB].read() as session:
        row = await session.scalar(
            select(BookingPayment).where(BookingPayment.booking_id == uuid.UUID(booking_id))
        )
    assert row is not None
    return row


async def settled(client: Client, booking_id: str, status: str) -> BookingPayment:
    await client.app[DEPOSIT_JOBS].kick()

    async def check() -> BookingPayment | None:
        row = await payment_row(client, booking_id)
        return row if row.status.value == status and row.settled_at is not None else None

    found: BookingPayment = await wait_until(check, within=20)
    return found


async def test_a_deposit_is_paid_before_the_booking_is_confirmed_and_refunded_on_cancel(
    client: Client, make_staff: Any
) -> None:
    w = await world(client, make_staff, price_amount=5500, deposit_amount=1000)
    assert w["type"]["payment_capture"] == "charge"
    status, made = await post(client, "/api/v1/bookings", booking_body(w["type"]["id"], next_slot(180)))
    assert status == 201, made
    token, booking = made["token"], made["booking"]
    assert (booking["status"], booking["awaiting_payment"], booking["payment"]) == ("pending", True, None)
    assert made["pending_until"] is not None
    # Joining is refused while it is not paid.
    status, body = await post(client, "/api/v1/bookings/join", {"token": token})
    assert (status, body["error"]["code"]) == (409, "booking_pending")

    status, sheet = await post(client, "/api/v1/bookings/payment", {"token": token})
    assert status == 200, sheet
    assert (sheet["amount_minor"], sheet["currency"], sheet["purpose"], sheet["capture"]) == (
        1000,
        "JPY",
        "deposit",
        "charge",
    )
    assert (sheet["provider"], sheet["test_mode"], sheet["status"]) == ("sandbox", True, "open")
    status, again = await post(client, "/api/v1/bookings/payment", {"token": token})
    assert again["payment_id"] == sheet["payment_id"]  # one payment per booking

    status, declined = await post(
        client, "/api/v1/bookings/payment/sandbox", {"token": token, "action": "decline"}
    )
    assert status == 200, declined
    assert (declined["status"], declined["failure_code"], declined["booking_status"]) == (
        "open",
        "card_declined",
        "pending",
    )
    status, paid = await post(client, "/api/v1/bookings/payment/sandbox", {"token": token, "action": "pay"})
    assert (paid["status"], paid["booking_status"]) == ("paid", "confirmed")
    # The booked call's page shows it paid.
    shown = await booking_of(client, token)
    assert shown["status"] == "confirmed"
    assert shown["awaiting_payment"] is False
    assert shown["payment"] == {
        "status": "paid",
        "purpose": "deposit",
        "capture": "charge",
        "amount_minor": 1000,
        "currency": "JPY",
        "kept_minor": 0,
        "test_mode": True,
        "failure_code": None,
    }
    status, again = await post(client, "/api/v1/bookings/payment/sandbox", {"token": token, "action": "pay"})
    assert again["status"] == "paid"  # paying twice takes nothing more

    status, _ = await post(
        client, "/api/v1/bookings/cancel", {"token": token, "reason": "予定が変わりました"}
    )
    assert status == 200
    row = await settled(client, booking["id"], "refunded")
    assert (row.amount_minor, row.kept_minor) == (1000, 0)
    async with client.app[DB].read() as session:
        notes = (
            await session.scalars(
                select(TimelineEvent.summary)
                .where(TimelineEvent.kind == TimelineKind.PAYMENT, TimelineEvent.ref_id == booking["id"])
                .order_by(TimelineEvent.occurred_at)
            )
        ).all()
    assert notes == [
        "Booking deposit of ¥1,000 paid",
        "Booking deposit of ¥1,000 refunded (booking cancelled)",
    ]


async def test_a_hold_is_captured_on_a_no_show_and_released_on_cancel(
    client: Client, make_staff: Any
) -> None:
    w = await world(client, make_staff, price_amount=3300, payment_capture="hold", horizon_days=6)
    tokens = []
    for minutes in (180, 240):
        status, made = await post(
            client, "/api/v1/bookings", booking_body(w["type"]["id"], next_slot(minutes))
        )
        assert status == 201, made
        status, sheet = await post(client, "/api/v1/bookings/payment", {"token": made["token"]})
        assert (sheet["purpose"], sheet["capture"], sheet["amount_minor"]) == ("price", "hold", 3300)
        status, held = await post(
            client, "/api/v1/bookings/payment/sandbox", {"token": made["token"], "action": "pay"}
        )
        assert (held["status"], held["booking_status"]) == ("held", "confirmed")
        tokens.append((made["token"], made["booking"]["id"]))
    (missed_token, missed), (cancel_token, cancelled) = tokens
    # The booking jobs' verdict (tested in test_booking_joining): the shopper did not come.
    async with client.app[DB].transaction() as session:
        await session.execute(
            update(Booking)
            .where(Booking.id == uuid.UUID(missed))
            .values(status=BookingStatus.NO_SHOW_SHOPPER)
        )
    row = await settled(client, missed, "paid")
    assert row.kept_minor == 3300
    assert (await booking_of(client, missed_token))["payment"]["status"] == "paid"
    status, _ = await post(client, "/api/v1/bookings/cancel", {"token": cancel_token, "reason": ""})
    assert status == 200
    row = await settled(client, cancelled, "released")
    assert row.kept_minor == 0


async def test_an_unpaid_booking_lapses_and_frees_its_slot(client: Client, make_staff: Any) -> None:
    w = await world(client, make_staff, deposit_amount=2000)
    start = next_slot(180)
    body = booking_body(w["type"]["id"], start, w["advisor"].id)
    status, made = await post(client, "/api/v1/bookings", body)
    assert status == 201
    status, _ = await post(client, "/api/v1/bookings/payment", {"token": made["token"]})
    # The slot is held meanwhile.
    status, taken = await post(
        client, "/api/v1/bookings", booking_body(w["type"]["id"], start, w["advisor"].id)
    )
    assert (status, taken["error"]["code"]) == (409, "slot_taken")
    async with client.app[DB].transaction() as session:
        await session.execute(
            update(Booking)
            .where(Booking.id == uuid.UUID(made["booking"]["id"]))
            .values(pending_until=utcnow())
        )
    await client.app[JOBS].kick()
    row = await settled(client, made["booking"]["id"], "canceled")
    assert row.kept_minor == 0
    assert (await booking_of(client, made["token"]))["status"] == "expired"
    status, body = await post(
        client, "/api/v1/bookings/payment/sandbox", {"token": made["token"], "action": "pay"}
    )
    assert status == 200
    assert body["status"] == "canceled"  # too late: nothing is taken
    status, again = await post(
        client, "/api/v1/bookings", booking_body(w["type"]["id"], start, w["advisor"].id)
    )
    assert status == 201, again


async def test_free_types_take_nothing_and_a_hold_needs_a_short_horizon(
    client: Client, make_staff: Any
) -> None:
    w = await world(client, make_staff)
    status, made = await post(client, "/api/v1/bookings", booking_body(w["type"]["id"], next_slot(180)))
    assert made["booking"]["status"] == "confirmed"
    status, body = await post(client, "/api/v1/bookings/payment", {"token": made["token"]})
    assert (status, body["error"]["code"]) == (409, "no_payment_due")
    status, body = await post(client, "/api/v1/bookings/payment", {"token": "not-a-token-at-all"})
    assert status in (401, 404), body
    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    async with client.post(
        "/api/v1/consultation-types",
        json={
            "name": "取り置き",
            "duration_minutes": 30,
            "price_amount": 1000,
            "currency": "JPY",
            "payment_capture": "hold",
        },
        headers=headers,
    ) as response:
        assert response.status == 422
        assert "payment_capture" in (await response.text())


async def test_an_anonymous_booking_waits_for_both_its_mail_link_and_its_money(
    client: Client, make_staff: Any
) -> None:
    w = await world(client, make_staff, deposit_amount=1000)
    for mail_first in (False, True):
        status, made = await post(
            client, "/api/v1/bookings", booking_body(w["type"]["id"], next_slot(180 + 60 * mail_first))
        )
        assert status == 201
        token = made["token"]
        if mail_first:
            confirmed = await confirm(client, made)
            assert (confirmed["booking"]["status"], confirmed["booking"]["awaiting_payment"]) == (
                "pending",
                True,
            )
            token = confirmed["token"]  # the mailed links replace the first token
        status, sheet = await post(client, "/api/v1/bookings/payment", {"token": token})
        assert status == 200, sheet
        status, paid = await post(
            client, "/api/v1/bookings/payment/sandbox", {"token": token, "action": "pay"}
        )
        if mail_first:
            assert (paid["status"], paid["booking_status"]) == ("paid", "confirmed")
        else:
            assert (paid["status"], paid["booking_status"]) == (
                "paid",
                "pending",
            )  # the mail link is still due
            confirmed = await confirm(client, made)
            assert confirmed["booking"]["status"] == "confirmed"
            assert confirmed["booking"]["payment"]["status"] == "paid"
