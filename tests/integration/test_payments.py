"""Payment requests in the call, with the sandbox provider: the advisor sends, the shopper
pays (or is declined, or authenticates), both hear "paid" over their real sockets, the order
lands on the timeline; sending twice makes one request; refunds by supervisors and admins;
every role sees only what it may. (Stripe itself: test_payment_stripe.py.)"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import (
    OrderChannel,
    PaymentRequest,
    Product,
    Role,
    ShopOrder,
    ShopOrderLine,
    TimelineEvent,
    TimelineKind,
    WebhookDelivery,
    WebhookEndpoint,
)
from livedesk.payments.service import RevenueFigure, revenue_between
from livedesk.settings import Settings
from tests.conftest import SocketClient, StaffAccount

PRODUCTS = [
    ("HB-SK-001", "Sakura Glow Serum", "桜グロウ美容液", 8800, "JPY"),
    ("HB-MU-002", "Silk Lip Tint", "シルク リップティント", 3300, "JPY"),
    ("US-TOTE", "Canvas Tote", "", 1234, "USD"),
    ("US-SCARF", "Silk Scarf", "", 4999, "USD"),
    ("EU-PEN", "Fountain Pen", "", 2550, "EUR"),
]


async def add_products(db: Database) -> None:
    async with db.transaction() as session:
        for sku, name, name_ja, price, currency in PRODUCTS:
            session.add(Product(sku=sku, name=name, name_ja=name_ja, price_minor=price, currency=currency))


class StaffHttp:
    """A staff member's own HTTP session (cookie jar) and CSRF header."""

    def __init__(self, base: str) -> None:
        self.base = base
        # unsafe=True: keep cookies for an IP address host (the test server is 127.0.0.1).
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.headers: dict[str, str] = {}

    async def login(self, account: StaffAccount) -> StaffHttp:
        response = await self.http.post(
            self.base + "/api/v1/auth/login", json={"email": account.email, "password": account.password}
        )
        assert response.status == 200, await response.text()
        self.headers = {"X-CSRF-Token": (await response.json())["csrf_token"]}
        return self

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        async with self.http.request(method, self.base + path, headers=headers, **kwargs) as response:
            return response.status, await response.json()

    async def close(self) -> None:
        await self.http.close()


@dataclass
class Call:
    consultation_id: str
    shopper_id: str
    token: str
    shopper: SocketClient
    console: SocketClient
    advisor: StaffHttp

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def active_call(live: Any, advisor_account: StaffAccount, kind: str = "video") -> Call:
    """A consultation the advisor has accepted: both sockets connected, the advisor's HTTP
    session signed in."""
    console = await live.staff(advisor_account)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    visitor = await live.visitor()
    shopper = await live.shopper(visitor["token"])
    consultation = await shopper.ok("queue.join", {"kind": kind})
    await console.wait_for("offer.new")
    await console.ok("offer.accept", {"consultation_id": consultation["id"]})
    advisor = await StaffHttp(live.url).login(advisor_account)
    return Call(
        consultation_id=consultation["id"],
        shopper_id=visitor["shopper_id"],
        token=visitor["token"],
        shopper=shopper,
        console=console,
        advisor=advisor,
    )


def key() -> str:
    return uuid.uuid4().hex


# --- tests ----------------------------------------------------------------------------------


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"presence_grace_seconds": 0.0})


@pytest.fixture
async def products(db: Database) -> None:
    await add_products(db)


async def _timeline(db: Database, shopper_id: str) -> list[TimelineEvent]:
    async with db.read() as session:
        rows = await session.scalars(
            select(TimelineEvent)
            .where(
                TimelineEvent.shopper_id == uuid.UUID(shopper_id), TimelineEvent.kind == TimelineKind.PAYMENT
            )
            .order_by(TimelineEvent.recorded_at)
        )
        return list(rows.all())


async def test_advisor_requests_shopper_pays_both_see_paid_and_the_order_is_on_the_timeline(
    live: Any, make_staff: Any, db: Database, products: None
) -> None:
    call = await active_call(live, await make_staff(Role.ADVISOR))
    try:
        lines = [{"sku": "HB-SK-001", "quantity": 2}, {"sku": "HB-MU-002"}]
        status, body = await call.advisor.request(
            "POST",
            f"/api/v1/consultations/{call.consultation_id}/payment-requests",
            json={"client_key": key(), "lines": lines},
        )
        assert status == 201, body
        assert body["status"] == "open"
        assert body["provider"] == "sandbox"
        assert body["test_mode"] is True
        assert body["currency"] == "JPY"
        assert body["total_minor"] == 2 * 8800 + 3300
        assert body["total_text"] == "¥20,900"
        assert [(x["sku"], x["quantity"], x["amount_minor"]) for x in body["lines"]] == [
            ("HB-SK-001", 2, 17600),
            ("HB-MU-002", 1, 3300),
        ]
        request_id = body["id"]
        heard = await call.shopper.wait_for("payment.updated", lambda p: p["id"] == request_id)
        assert heard["status"] == "open"
        assert "client_secret" not in heard
        await call.console.wait_for("payment.updated", lambda p: p["id"] == request_id)

        # The shopper's sheet: sandbox, test mode, no secret to hand out.
        async with live.http.post(
            f"/api/v1/payment-requests/{request_id}/checkout", headers=call.bearer
        ) as r:
            assert r.status == 200
            sheet = await r.json()
        assert sheet["provider"] == "sandbox"
        assert sheet["test_mode"] is True
        assert sheet["client_secret"] is None
        assert sheet["publishable_key"] == ""

        async with live.http.post(
            f"/api/v1/payment-requests/{request_id}/sandbox", headers=call.bearer, json={"action": "pay"}
        ) as r:
            assert r.status == 200
            assert (await r.json())["status"] == "paid"
        paid_shopper = await call.shopper.wait_for("payment.updated", lambda p: p["status"] == "paid")
        paid_console = await call.console.wait_for("payment.updated", lambda p: p["status"] == "paid")
        assert paid_shopper["order_id"] == paid_console["order_id"] is not None

        # Paying again changes nothing: one order, one "paid" on the timeline.
        async with live.http.post(
            f"/api/v1/payment-requests/{request_id}/sandbox", headers=call.bearer, json={"action": "pay"}
        ) as r:
            assert r.status == 200
        async with db.read() as session:
            orders = (
                await session.scalars(select(ShopOrder).where(ShopOrder.channel == OrderChannel.CALL))
            ).all()
            assert len(orders) == 1
            assert orders[0].total_minor == 20900
            assert orders[0].currency == "JPY"
            assert str(orders[0].shopper_id) == call.shopper_id
        events = await _timeline(db, call.shopper_id)
        assert [e.data["status"] for e in events] == ["requested", "paid"]
        paid = events[-1]
        assert paid.summary.startswith("Paid ¥20,900 in the call")
        assert paid.data["order_id"] == str(orders[0].id)
        assert [i["sku"] for i in paid.data["items"]] == ["HB-SK-001", "HB-MU-002"]
        assert str(paid.consultation_id) == call.consultation_id

        # Read back by each party.
        status, listed = await call.advisor.request(
            "GET", f"/api/v1/consultations/{call.consultation_id}/payment-requests"
        )
        assert status == 200
        assert [x["status"] for x in listed] == ["paid"]
        async with live.http.get(f"/api/v1/payment-requests/{request_id}", headers=call.bearer) as r:
            assert r.status == 200
            assert (await r.json())["status"] == "paid"

        async with db.read() as session:
            now = utcnow()
            figures = await revenue_between(session, now - timedelta(hours=1), now + timedelta(hours=1))
            assert figures == [RevenueFigure(currency="JPY", amount_minor=20900, paid_consultations=1)]
            assert await revenue_between(session, now + timedelta(hours=1), now + timedelta(hours=2)) == []
    finally:
        await call.advisor.close()


async def test_sending_twice_makes_one_request(
    live: Any, make_staff: Any, db: Database, products: None
) -> None:
    call = await active_call(live, await make_staff(Role.ADVISOR))
    try:
        path = f"/api/v1/consultations/{call.consultation_id}/payment-requests"
        body = {"client_key": key(), "lines": [{"sku": "HB-SK-001"}]}
        first_status, first = await call.advisor.request("POST", path, json=body)
        again_status, again = await call.advisor.request("POST", path, json=body)
        assert (first_status, again_status) == (201, 200)
        assert again["id"] == first["id"]
        # A double click: five at once with one key.
        burst = {"client_key": key(), "lines": [{"sku": "HB-MU-002", "quantity": 3}]}
        results = await asyncio.gather(*(call.advisor.request("POST", path, json=burst) for _ in range(5)))
        assert sorted(status for status, _ in results) == [200, 200, 200, 200, 201]
        assert len({b["id"] for _, b in results}) == 1
        async with db.read() as session:
            count = await session.scalar(select(func.count()).select_from(PaymentRequest))
            assert count == 2
        assert [e.data["status"] for e in await _timeline(db, call.shopper_id)] == ["requested", "requested"]
    finally:
        await call.advisor.close()


async def test_decline_and_extra_authentication_in_test_mode(
    live: Any, make_staff: Any, db: Database, products: None
) -> None:
    call = await active_call(live, await make_staff(Role.ADVISOR))
    try:
        status, body = await call.advisor.request(
            "POST",
            f"/api/v1/consultations/{call.consultation_id}/payment-requests",
            json={"client_key": key(), "lines": [{"sku": "US-TOTE"}, {"sku": "US-SCARF", "quantity": 2}]},
        )
        assert status == 201
        assert body["currency"] == "USD"
        assert body["total_minor"] == 1234 + 2 * 4999
        assert body["total_text"] == "$112.32"
        rid = body["id"]

        async def act(action: str, expect: int = 200) -> dict[str, Any]:
            async with live.http.post(
                f"/api/v1/payment-requests/{rid}/sandbox", headers=call.bearer, json={"action": action}
            ) as r:
                result: dict[str, Any] = await r.json()
                assert r.status == expect, result
                return result

        await live.http.post(f"/api/v1/payment-requests/{rid}/checkout", headers=call.bearer)
        declined = await act("decline")
        assert declined["status"] == "open"
        assert declined["failure_code"] == "card_declined"
        seen = await call.console.wait_for("payment.updated", lambda p: p["failure_code"] == "card_declined")
        assert "declined" in seen["failure_message"]
        # Authenticating when nobody asked is refused.
        assert (await act("authenticate", 409))["error"]["code"] == "no_authentication_pending"
        asked = await act("require_authentication")
        assert asked["status"] == "processing"
        assert asked["failure_code"] == "authentication_required"
        failed = await act("fail_authentication")
        assert failed["status"] == "open"
        assert failed["failure_code"] == "authentication_failed"
        await act("require_authentication")
        paid = await act("authenticate")
        assert paid["status"] == "paid"
        assert paid["failure_code"] is None
        await call.shopper.wait_for("payment.updated", lambda p: p["status"] == "paid")
        statuses = [e.data["status"] for e in await _timeline(db, call.shopper_id)]
        assert statuses == ["requested", "failed", "failed", "paid"]
    finally:
        await call.advisor.close()


async def test_refunds_partial_and_full_by_supervisors_only(
    live: Any, make_staff: Any, db: Database, products: None
) -> None:
    call = await active_call(live, await make_staff(Role.ADVISOR))
    supervisor = await StaffHttp(live.url).login(await make_staff(Role.SUPERVISOR))
    async with db.transaction() as session:
        # An integrator's endpoint for payment events (nothing listens at this address).
        session.add(
            WebhookEndpoint(
                url="http://127.0.0.1:9/hook",
                secret="s" * 32,
                event_types=["payment.succeeded", "payment.refunded"],
            )
        )
    try:
        _, body = await call.advisor.request(
            "POST",
            f"/api/v1/consultations/{call.consultation_id}/payment-requests",
            json={"client_key": key(), "lines": [{"sku": "HB-SK-001"}]},
        )
        rid = body["id"]
        refunds = f"/api/v1/payment-requests/{rid}/refunds"
        status, early = await supervisor.request("POST", refunds, json={"client_key": key()})
        assert status == 409
        assert early["error"]["code"] == "not_refundable"
        await live.http.post(
            f"/api/v1/payment-requests/{rid}/sandbox", headers=call.bearer, json={"action": "pay"}
        )

        # The advisor may not refund; the shopper even less.
        status, _denied = await call.advisor.request("POST", refunds, json={"client_key": key()})
        assert status == 403
        async with live.http.post(refunds, headers=call.bearer, json={"client_key": key()}) as r:
            assert r.status == 401

        part = {"client_key": key(), "amount_minor": 1800, "reason": "Damaged box"}
        status, after = await supervisor.request("POST", refunds, json=part)
        assert status == 201, after
        assert after["status"] == "partially_refunded"
        assert after["refunded_minor"] == 1800
        assert [(x["amount_minor"], x["status"]) for x in after["refunds"]] == [(1800, "succeeded")]
        # The same refund resubmitted refunds nothing more.
        status, same = await supervisor.request("POST", refunds, json=part)
        assert status == 200
        assert same["refunded_minor"] == 1800
        status, too_much = await supervisor.request(
            "POST", refunds, json={"client_key": key(), "amount_minor": 7001}
        )
        assert status == 422
        assert too_much["error"]["code"] == "refund_too_large"
        status, rest = await supervisor.request("POST", refunds, json={"client_key": key()})
        assert status == 201
        assert rest["status"] == "refunded"
        assert rest["refunded_minor"] == 8800
        await call.shopper.wait_for("payment.updated", lambda p: p["status"] == "refunded")
        await call.console.wait_for("payment.updated", lambda p: p["status"] == "refunded")
        status, _more = await supervisor.request(
            "POST", refunds, json={"client_key": key(), "amount_minor": 1}
        )
        assert status == 409

        # Outgoing webhooks were queued with the payment, once each.
        async with db.read() as session:
            outbox = (
                await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.next_attempt_at))
            ).all()
        assert sorted(d.event_type for d in outbox) == [
            "payment.refunded",
            "payment.refunded",
            "payment.succeeded",
        ]
        succeeded = next(d for d in outbox if d.event_type == "payment.succeeded")
        assert succeeded.payload["data"]["payment_request_id"] == rid
        assert succeeded.payload["data"]["total_minor"] == 8800
        assert succeeded.payload["data"]["currency"] == "JPY"
        summaries = [e.summary for e in await _timeline(db, call.shopper_id)]
        assert summaries[-2:] == ["Refunded ¥1,800 of ¥8,800: Damaged box", "Refunded ¥7,000 of ¥8,800"]
        status, recent = await supervisor.request("GET", "/api/v1/payment-requests?status=refunded")
        assert status == 200
        assert [x["id"] for x in recent] == [rid]
        status, _ = await call.advisor.request("GET", "/api/v1/payment-requests")
        assert status == 403
        async with db.read() as session:
            now = utcnow()
            assert await revenue_between(session, now - timedelta(hours=1), now + timedelta(hours=1)) == [
                RevenueFigure(currency="JPY", amount_minor=0, paid_consultations=1)
            ]
    finally:
        await call.advisor.close()
        await supervisor.close()


async def test_only_the_parties_see_and_act(live: Any, make_staff: Any, db: Database, products: None) -> None:
    call = await active_call(live, await make_staff(Role.ADVISOR))
    other_advisor = await StaffHttp(live.url).login(await make_staff(Role.ADVISOR))
    stranger = await live.visitor()
    strange = {"Authorization": f"Bearer {stranger['token']}"}
    stranger_socket = await live.shopper(stranger["token"])
    try:
        path = f"/api/v1/consultations/{call.consultation_id}/payment-requests"
        status, denied = await other_advisor.request(
            "POST", path, json={"client_key": key(), "lines": [{"sku": "HB-SK-001"}]}
        )
        assert status == 403
        assert denied["error"]["code"] == "not_a_party"
        async with live.http.post(path, json={"client_key": key(), "lines": [{"sku": "HB-SK-001"}]}) as r:
            assert r.status == 401
        # Bad input: a clear error each, nothing stored.
        for lines, code in [
            ([{"sku": "NOPE"}], "unknown_sku"),
            ([{"sku": "HB-SK-001"}, {"sku": "US-TOTE"}], "mixed_currencies"),
            ([{"sku": "HB-SK-001", "source": "history"}], "not_in_history"),
            ([{"sku": "HB-SK-001", "unit_price_minor": 1}], "validation_failed"),
            ([{"sku": "HB-SK-001", "quantity": 0}], "validation_failed"),
            ([], "validation_failed"),
        ]:
            status, error = await call.advisor.request(
                "POST", path, json={"client_key": key(), "lines": lines}
            )
            assert (status, error["error"]["code"]) == (422, code), (lines, error)
        status, error = await call.advisor.request(
            "POST", path, json={"client_key": "short", "lines": [{"sku": "HB-SK-001"}]}
        )
        assert status == 422
        assert error["error"]["details"][0]["field"] == "client_key"

        status, made = await call.advisor.request(
            "POST", path, json={"client_key": key(), "lines": [{"sku": "HB-SK-001"}]}
        )
        assert status == 201
        rid = made["id"]
        # Another shopper learns nothing, not even that it exists.
        for method, url, body in [
            ("GET", f"/api/v1/payment-requests/{rid}", None),
            ("POST", f"/api/v1/payment-requests/{rid}/checkout", None),
            ("POST", f"/api/v1/payment-requests/{rid}/sandbox", {"action": "pay"}),
        ]:
            async with live.http.request(method, url, headers=strange, json=body) as r:
                assert r.status == 404, (url, await r.text())
        async with live.http.get(path, headers=strange) as r:
            assert r.status == 403
        status, _ = await other_advisor.request("GET", f"/api/v1/payment-requests/{rid}")
        assert status == 403
        status, _ = await other_advisor.request(
            "GET", f"/api/v1/consultations/{call.consultation_id}/purchasables"
        )
        assert status == 403
        # The advisor cannot pay on the shopper's behalf.
        status, error = await call.advisor.request("POST", f"/api/v1/payment-requests/{rid}/checkout")
        assert status == 403
        assert error["error"]["code"] == "not_the_shopper"
        # The parties heard of it; the other shopper did not.
        await call.shopper.wait_for("payment.updated", lambda p: p["id"] == rid)
        await call.console.wait_for("payment.updated", lambda p: p["id"] == rid)
        assert stranger_socket.received("payment.updated") == []

        # After the consultation ends, no new requests.
        await call.console.ok("consultation.end", {"consultation_id": call.consultation_id})
        status, late = await call.advisor.request(
            "POST", path, json={"client_key": key(), "lines": [{"sku": "HB-SK-001"}]}
        )
        assert status == 409
        assert late["error"]["code"] == "not_active"
    finally:
        await call.advisor.close()
        await other_advisor.close()


async def test_purchasables_offer_the_catalogue_and_the_shoppers_past_purchases(
    live: Any, make_staff: Any, db: Database, products: None
) -> None:
    call = await active_call(live, await make_staff(Role.ADVISOR))
    try:
        async with db.transaction() as session:
            session.add(
                ShopOrder(
                    shopper_id=uuid.UUID(call.shopper_id),
                    external_id="W-1001",
                    channel=OrderChannel.WEB,
                    ordered_at=utcnow() - timedelta(days=30),
                    currency="JPY",
                    total_minor=8000 + 2 * 1500,
                    lines=[
                        ShopOrderLine(
                            position=1,
                            sku="HB-SK-001",
                            name="Serum (old name)",
                            quantity=1,
                            unit_price_minor=8000,
                        ),
                        ShopOrderLine(
                            position=2, sku="OLD-GONE", name="Retired Balm", quantity=2, unit_price_minor=1500
                        ),
                    ],
                )
            )
        status, body = await call.advisor.request(
            "GET", f"/api/v1/consultations/{call.consultation_id}/purchasables"
        )
        assert status == 200
        assert {p["sku"] for p in body["catalogue"]} == {p[0] for p in PRODUCTS}
        assert (body["provider"], body["test_mode"]) == ("sandbox", True)
        history = {h["sku"]: h for h in body["history"]}
        # Still sold: today's price and name; no longer sold: the price paid last time.
        assert (history["HB-SK-001"]["unit_price_minor"], history["HB-SK-001"]["name"]) == (
            8800,
            "Sakura Glow Serum",
        )
        assert (history["OLD-GONE"]["unit_price_minor"], history["OLD-GONE"]["name"]) == (
            1500,
            "Retired Balm",
        )
        status, made = await call.advisor.request(
            "POST",
            f"/api/v1/consultations/{call.consultation_id}/payment-requests",
            json={"client_key": key(), "lines": [{"sku": "OLD-GONE", "source": "history", "quantity": 2}]},
        )
        assert status == 201
        assert made["total_minor"] == 3000
        assert made["lines"][0]["source"] == "history"
    finally:
        await call.advisor.close()


async def test_call_page_csp_admits_no_stripe_in_sandbox_mode(live: Any) -> None:
    async with live.http.get("/call/") as r:
        policy = r.headers["Content-Security-Policy"]
    assert "stripe" not in policy
    assert "script-src 'self';" in policy


async def test_revenue_over_http_for_supervisors_only(
    live: Any, make_staff: Any, db: Database, products: None
) -> None:
    call = await active_call(live, await make_staff(Role.ADVISOR))
    supervisor = await StaffHttp(live.url).login(await make_staff(Role.SUPERVISOR))
    try:
        _, made = await call.advisor.request(
            "POST",
            f"/api/v1/consultations/{call.consultation_id}/payment-requests",
            json={"client_key": key(), "lines": [{"sku": "US-TOTE", "quantity": 2}]},
        )
        await live.http.post(
            f"/api/v1/payment-requests/{made['id']}/sandbox", headers=call.bearer, json={"action": "pay"}
        )
        now = utcnow()
        window = {
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(hours=1)).isoformat(),
        }
        status, figures = await supervisor.request("GET", "/api/v1/payments/revenue", params=window)
        assert status == 200
        assert figures == [{"currency": "USD", "amount_minor": 2468, "paid_consultations": 1}]
        status, _ = await call.advisor.request("GET", "/api/v1/payments/revenue", params=window)
        assert status == 403
        naive = {"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"}
        status, error = await supervisor.request("GET", "/api/v1/payments/revenue", params=naive)
        assert status == 422
        assert "time zone" in error["error"]["message"]
    finally:
        await call.advisor.close()
        await supervisor.close()
