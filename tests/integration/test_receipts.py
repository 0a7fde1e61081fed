"""The shopper after paying: the receipt (order number, items, amount, currency) the call page
gets, the order number's stability and uniqueness (even when a stored order already holds the
short number), the purchase on the timeline linked to its payment, the receipt mail of a
booked consultation sent exactly once, and the refunds page's view of who paid and who sold."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from livedesk.booking.jobs import JOBS
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import (
    BookingMail,
    BookingMailKind,
    OrderChannel,
    PaymentRequest,
    Role,
    ShopOrder,
    Shopper,
    TimelineEvent,
    TimelineKind,
)
from livedesk.payments import receipts
from livedesk.payments.service import request_id_for
from livedesk.settings import Settings
from tests.conftest import SmtpInbox, wait_until
from tests.integration.test_booking_api import book, booking_body, make_type, next_slot, set_hours
from tests.integration.test_payments import StaffHttp, active_call, add_products, key

Client = TestClient[web.Request, web.Application]
ORDER_NUMBER = re.compile(r"^LD-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")


@pytest.fixture
def settings(settings: Settings, smtp_inbox: SmtpInbox) -> Settings:
    return settings.model_copy(
        update={
            "presence_grace_seconds": 0.0,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_inbox.port,
            "mail_from": "Hanami Beauty <desk@hanami.example>",
            "public_url": "https://desk.hanami.example",
            "booking_join_early_minutes": 90,
            "booking_rate_limit": "1000/minute",
        }
    )


@pytest.fixture
async def products(db: Database) -> None:
    await add_products(db)


async def _pay(live: Any, request_id: str, token: str, action: str = "pay") -> tuple[int, Any]:
    response = await live.http.post(
        f"/api/v1/payment-requests/{request_id}/sandbox",
        json={"action": action},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status, await response.json()


async def _send(call: Any, lines: list[dict[str, Any]], client_key: str | None = None) -> dict[str, Any]:
    status, body = await call.advisor.request(
        "POST",
        f"/api/v1/consultations/{call.consultation_id}/payment-requests",
        json={"client_key": client_key or key(), "lines": lines},
    )
    assert status == 201, body
    result: dict[str, Any] = body
    return result


async def test_the_shopper_gets_a_receipt_and_the_purchase_is_on_the_timeline(
    live: Any, make_staff: Any, db: Database, products: None
) -> None:
    call = await active_call(live, await make_staff(Role.ADVISOR))
    try:
        sent = await _send(call, [{"sku": "HB-SK-001", "quantity": 2}, {"sku": "HB-MU-002"}])
        assert sent["order_number"] is None
        status, paid = await _pay(live, sent["id"], call.token)
        assert status == 200, paid
        assert paid["status"] == "paid"
        number = paid["order_number"]
        assert ORDER_NUMBER.match(number), number
        # The receipt as the call page hears it: number, items, amount and currency.
        heard = await call.shopper.wait_for("payment.updated", lambda p: p["status"] == "paid")
        assert heard["order_number"] == number
        assert [(x["sku"], x["quantity"], x["amount_minor"]) for x in heard["lines"]] == [
            ("HB-SK-001", 2, 17600),
            ("HB-MU-002", 1, 3300),
        ]
        assert (heard["total_minor"], heard["currency"], heard["total_text"]) == (20900, "JPY", "¥20,900")
        # Stable: a reload reads the same number; paying again changes nothing.
        listed = await live.http.get(
            f"/api/v1/consultations/{call.consultation_id}/payment-requests", headers=call.bearer
        )
        assert [r["order_number"] for r in await listed.json()] == [number]
        status, again = await _pay(live, sent["id"], call.token)
        assert (status, again["order_number"]) == (200, number)

        async with db.read() as session:
            order = (
                await session.scalars(select(ShopOrder).where(ShopOrder.channel == OrderChannel.CALL))
            ).one()
            assert order.external_id == number
            events = (
                await session.scalars(
                    select(TimelineEvent)
                    .where(TimelineEvent.shopper_id == uuid.UUID(call.shopper_id))
                    .where(TimelineEvent.kind.in_([TimelineKind.SHOP_ORDER, TimelineKind.PAYMENT]))
                    .order_by(TimelineEvent.recorded_at)
                )
            ).all()
            # Not a booked consultation: no receipt mail is queued.
            assert await session.scalar(select(func.count()).select_from(BookingMail)) == 0
        purchases = [e for e in events if e.kind is TimelineKind.SHOP_ORDER]
        assert len(purchases) == 1
        purchase = purchases[0]
        assert purchase.ref_id == str(order.id)
        assert str(purchase.consultation_id) == call.consultation_id
        assert purchase.data["payment_request_id"] == sent["id"]
        assert purchase.data["order_number"] == purchase.data["external_id"] == number
        assert purchase.data["channel"] == "call"
        assert (purchase.data["total_minor"], purchase.data["currency"]) == (20900, "JPY")
        assert [i["sku"] for i in purchase.data["items"]] == ["HB-SK-001", "HB-MU-002"]
        assert purchase.summary == f"Bought in the call: order {number}, 3 items, ¥20,900"
        paid_step = next(e for e in events if e.kind is TimelineKind.PAYMENT and e.data["status"] == "paid")
        assert paid_step.data["order_number"] == number
        assert paid_step.data["order_id"] == str(order.id)

        # Staff read the purchase as an order, with its lines (the customer panel's detail).
        staff = await StaffHttp(live.url).login(await make_staff(Role.SUPERVISOR))
        try:
            status, page = await staff.request(
                "GET", f"/api/v1/shoppers/{call.shopper_id}/timeline", params={"kind": "shop.order"}
            )
            assert status == 200, page
            assert [e["data"]["order_number"] for e in page["events"]] == [number]
            status, detail = await staff.request(
                "GET", f"/api/v1/shoppers/{call.shopper_id}/timeline/{page['events'][0]['id']}"
            )
            assert status == 200, detail
            assert detail["detail"]["order"]["external_id"] == number
            assert len(detail["detail"]["order"]["lines"]) == 2
        finally:
            await staff.close()
    finally:
        await call.advisor.close()


async def test_order_numbers_are_unique_even_when_the_short_number_is_taken(
    live: Any, make_staff: Any, db: Database, products: None
) -> None:
    call = await active_call(live, await make_staff(Role.ADVISOR))
    try:
        # An attacker's shop order (or a bad import) already holds the number this request
        # would get first: the fulfilment must not fail, nor reuse it.
        first_key = key()
        doomed = request_id_for(uuid.UUID(call.consultation_id), first_key)
        short = next(receipts.order_number_candidates(doomed))
        async with db.transaction() as session:
            session.add(
                ShopOrder(
                    shopper_id=uuid.UUID(call.shopper_id),
                    external_id=short,
                    channel=OrderChannel.WEB,
                    ordered_at=utcnow(),
                    currency="JPY",
                    total_minor=1,
                )
            )
        numbers = []
        for client_key in [first_key, key(), key(), key()]:
            sent = await _send(call, [{"sku": "HB-MU-002"}], client_key)
            status, paid = await _pay(live, sent["id"], call.token)
            assert status == 200, paid
            numbers.append(paid["order_number"])
        assert numbers[0] != short
        assert numbers[0].startswith(short)
        assert re.fullmatch(r"LD-(\w{4}-){2}\w{4}", numbers[0]), numbers[0]
        assert len(set(numbers)) == 4
        async with db.read() as session:
            stored = (
                await session.scalars(
                    select(ShopOrder.external_id).where(ShopOrder.channel == OrderChannel.CALL)
                )
            ).all()
            by_request = {
                request_id: order_id
                for request_id, order_id in await session.execute(
                    select(PaymentRequest.id, PaymentRequest.order_id)
                )
            }
        assert sorted(stored) == sorted(numbers)
        assert len(set(by_request.values())) == 4
    finally:
        await call.advisor.close()


async def _booked_call(
    client: Client, live: Any, make_staff: Any, locale: str
) -> tuple[Any, StaffHttp, dict[str, Any], str]:
    """A booked consultation the booked advisor has accepted: (shopper socket, advisor HTTP,
    join answer, booking id)."""
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(
        Role.ADVISOR,
        timezone="Europe/London",
        display_name="田中 さくら",
        extra={"display_name_en": "Sakura Tanaka"},
    )
    ctype = await make_type(client, admin, kind="video", name_en="Skin check")
    await set_hours(client, advisor, timezone="Europe/London")
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    body = booking_body(ctype["id"], next_slot(20), advisor.id, locale=locale)
    body["contact"] = {"name": "Emily Brown", "email": "emily@example.co.uk"}
    created = await book(client, body)
    joined = await (await client.post("/api/v1/bookings/join", json={"token": created["token"]})).json()
    assert joined["status"] == "open", joined
    shopper = await live.shopper(joined["visitor_token"])
    await console.wait_for("offer.new")
    await console.ok("offer.accept", {"consultation_id": joined["consultation_id"]})
    http = await StaffHttp(live.url).login(advisor)
    return shopper, http, joined, created["booking"]["id"]


def _receipts(inbox: SmtpInbox) -> list[Any]:
    return [m for m in inbox.parsed() if "receipt" in str(m["Subject"]) or "領収書" in str(m["Subject"])]


@pytest.mark.parametrize("locale", ["en", "ja"])
async def test_a_booked_consultation_gets_its_receipt_mail_exactly_once(
    client: Client,
    live: Any,
    make_staff: Any,
    db: Database,
    products: None,
    smtp_inbox: SmtpInbox,
    locale: str,
) -> None:
    shopper, advisor, joined, booking_id = await _booked_call(client, live, make_staff, locale)
    try:
        status, sent = await advisor.request(
            "POST",
            f"/api/v1/consultations/{joined['consultation_id']}/payment-requests",
            json={"client_key": key(), "lines": [{"sku": "HB-SK-001", "quantity": 2}, {"sku": "HB-MU-002"}]},
        )
        assert status == 201, sent
        status, paid = await _pay(live, sent["id"], joined["visitor_token"])
        assert status == 200, paid
        number = paid["order_number"]
        await wait_until(lambda: _has(smtp_inbox, 1))
        (mail,) = _receipts(smtp_inbox)
        text = mail.get_body(preferencelist=("plain",)).get_content()
        assert str(mail["To"]) == "emily@example.co.uk"
        assert number in str(mail["Subject"])
        assert number in text
        if locale == "ja":
            assert "桜グロウ美容液 × 2　¥17,600" in text
            assert "シルク リップティント × 1　¥3,300" in text
            assert "合計（JPY）: ¥20,900" in text
            assert "担当: 田中 さくら" in text
            assert "テストモード" in text
        else:
            assert "Dear Emily Brown" in text
            assert "Sakura Glow Serum × 2  ¥17,600" in text
            assert "Total (JPY): ¥20,900" in text
            assert "Advisor: Sakura Tanaka" in text
            assert "test-mode" in text
        # Paying again, another pass of the jobs (as another process would): still one.
        status, _again = await _pay(live, sent["id"], joined["visitor_token"])
        assert status == 200
        await client.app[JOBS].kick()
        await client.app[JOBS].kick()
        assert len(_receipts(smtp_inbox)) == 1
        async with db.read() as session:
            rows = (
                await session.scalars(select(BookingMail).where(BookingMail.kind == BookingMailKind.RECEIPT))
            ).all()
        assert [(str(r.booking_id), r.sent_at is not None, r.last_error) for r in rows] == [
            (booking_id, True, "")
        ]
        heard = await shopper.wait_for("payment.updated", lambda p: p["status"] == "paid")
        assert heard["order_number"] == number
    finally:
        await advisor.close()


async def _has(inbox: SmtpInbox, n: int) -> bool:
    return len(_receipts(inbox)) >= n


async def test_the_refunds_list_names_customer_advisor_and_order(
    live: Any, make_staff: Any, db: Database, products: None
) -> None:
    advisor_account = await make_staff(Role.ADVISOR, display_name="Ken Sato")
    call = await active_call(live, advisor_account)
    supervisor = await StaffHttp(live.url).login(await make_staff(Role.SUPERVISOR))
    try:
        async with db.transaction() as session:
            shopper = await session.get(Shopper, uuid.UUID(call.shopper_id))
            assert shopper is not None
            shopper.display_name = "Aiko Tanaka"
            shopper.email = "aiko@example.jp"
        sent = await _send(call, [{"sku": "HB-SK-001"}])
        _status, paid = await _pay(live, sent["id"], call.token)
        open_one = await _send(call, [{"sku": "HB-MU-002"}])
        status, rows = await supervisor.request("GET", "/api/v1/payment-requests")
        assert status == 200, rows
        by_id = {r["id"]: r for r in rows}
        row = by_id[sent["id"]]
        assert (row["shopper_id"], row["shopper_name"], row["shopper_email"]) == (
            call.shopper_id,
            "Aiko Tanaka",
            "aiko@example.jp",
        )
        assert row["advisor_name"] == "Ken Sato"
        assert row["order_number"] == paid["order_number"]
        assert [line["name"] for line in row["lines"]] == ["Sakura Glow Serum"]
        assert by_id[open_one["id"]]["order_number"] is None
        # An advisor does not read the list, customers' names included.
        status, refused = await call.advisor.request("GET", "/api/v1/payment-requests")
        assert status == 403, refused
    finally:
        await supervisor.close()
        await call.advisor.close()
