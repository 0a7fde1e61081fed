"""Refunds as Stripe sends them: every order of {payment succeeded, refund pending, refund
succeeded, refund failed} (and the realistic subsets) ends in the state Stripe's own objects
show.

Each event is Stripe event JSON shaped like Stripe's published objects (PaymentIntent, Charge
with its refund list, Refund), signed with Stripe's scheme (``t=…,v1=HMAC-SHA256`` over
``t.payload``; checked here with the SDK's ``construct_event`` too) and posted to the real
endpoint. Behind the app, the real ``stripe`` SDK asks a small Stripe stand-in (the two GETs
Stripe's API answers: a PaymentIntent, and a PaymentIntent's refund list). The stand-in's
truth moves as a real Stripe account would: a delivery can only come after the event it
carries happened, so at each delivery Stripe holds at least the state of the latest event
delivered so far; the deliveries themselves come in every order.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import stripe
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr
from sqlalchemy import func, select

from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import (
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    OrderChannel,
    PaymentProviderName,
    PaymentRefund,
    PaymentRequest,
    PaymentRequestLine,
    PaymentStatus,
    PaymentWebhookEvent,
    Role,
    ShopOrder,
    Shopper,
)
from livedesk.models.payments import LineSource
from livedesk.payments.service import revenue_between
from livedesk.settings import Settings
from tests.integration.test_payment_stripe import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET, signature
from tests.integration.test_payments import StaffHttp, key

TOTAL = 5000  # JPY: no minor unit, ¥5,000
REFUND = 2000


class StripeStandIn:
    """Stripe's API as far as the webhook asks it: GET /v1/payment_intents/{id} and
    GET /v1/refunds?payment_intent=…, answering from ``truth`` (what the account holds now).
    ``down`` makes it answer 500 like an outage."""

    def __init__(self) -> None:
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, list[dict[str, Any]]] = {}
        self.asked: list[str] = []
        self.down = False

    async def intent(self, request: web.Request) -> web.Response:
        self.asked.append(request.path)
        if self.down:
            return web.json_response({"error": {"type": "api_error", "message": "outage"}}, status=500)
        found = self.intents.get(request.match_info["id"])
        if found is None:
            return web.json_response(
                {"error": {"type": "invalid_request_error", "code": "resource_missing"}}, status=404
            )
        return web.json_response(found)

    async def refund_list(self, request: web.Request) -> web.Response:
        self.asked.append(request.path_qs)
        if self.down:
            return web.json_response({"error": {"type": "api_error", "message": "outage"}}, status=500)
        rows = self.refunds.get(request.query.get("payment_intent", ""), [])
        return web.json_response({"object": "list", "data": rows, "has_more": False, "url": "/v1/refunds"})

    async def create_refund(self, request: web.Request) -> web.Response:
        """POST /v1/refunds: a pending refund, as Stripe answers for many payment methods."""
        form = await request.post()
        pi = str(form["payment_intent"])
        obj = refund_object(
            f"re_{uuid.uuid4().hex[:24]}", pi, "ch_staff", "pending", int(str(form["amount"])), 0
        )
        self.refunds.setdefault(pi, []).append(obj)
        return web.json_response(obj)


@pytest.fixture
async def stand_in() -> AsyncIterator[tuple[StripeStandIn, str]]:
    fake = StripeStandIn()
    api = web.Application()
    api.router.add_get("/v1/payment_intents/{id}", fake.intent)
    api.router.add_get("/v1/refunds", fake.refund_list)
    api.router.add_post("/v1/refunds", fake.create_refund)
    server = TestServer(api, host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
def settings(settings: Settings, stand_in: tuple[StripeStandIn, str]) -> Settings:
    return settings.model_copy(
        update={
            "stripe_secret_key": SecretStr(SECRET_KEY),
            "stripe_publishable_key": PUBLISHABLE_KEY,
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "stripe_api_base": stand_in[1],
        }
    )


# ---- Stripe's objects, shaped as Stripe's API returns them ---------------------------------


def payment_intent(pi: str, charge: str, status: str, created: int) -> dict[str, Any]:
    return {
        "id": pi,
        "object": "payment_intent",
        "amount": TOTAL,
        "amount_capturable": 0,
        "amount_received": TOTAL if status == "succeeded" else 0,
        "capture_method": "automatic",
        "client_secret": f"{pi}_secret_test",
        "confirmation_method": "automatic",
        "created": created,
        "currency": "jpy",
        "latest_charge": charge if status == "succeeded" else None,
        "last_payment_error": None,
        "livemode": False,
        "metadata": {},
        "payment_method": "pm_card_visa",
        "payment_method_types": ["card"],
        "status": status,
    }


def refund_object(re: str, pi: str, charge: str, status: str, amount: int, created: int) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": re,
        "object": "refund",
        "amount": amount,
        "balance_transaction": f"txn_{re[3:]}",
        "charge": charge,
        "created": created,
        "currency": "jpy",
        "destination_details": {"card": {"reference_status": "pending", "type": "refund"}, "type": "card"},
        "metadata": {},
        "payment_intent": pi,
        "reason": "requested_by_customer",
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
    }
    if status == "failed":
        obj["failure_reason"] = "expired_or_canceled_card"
        obj["failure_balance_transaction"] = f"txn_fail_{re[3:]}"
    return obj


def charge_object(charge: str, pi: str, refunds: list[dict[str, Any]], created: int) -> dict[str, Any]:
    refunded = sum(r["amount"] for r in refunds if r["status"] in ("pending", "succeeded"))
    return {
        "id": charge,
        "object": "charge",
        "amount": TOTAL,
        "amount_captured": TOTAL,
        "amount_refunded": refunded,
        "captured": True,
        "created": created,
        "currency": "jpy",
        "livemode": False,
        "paid": True,
        "payment_intent": pi,
        "refunded": refunded >= TOTAL,
        "refunds": {
            "object": "list",
            "data": refunds,
            "has_more": False,
            "url": f"/v1/charges/{charge}/refunds",
        },
        "status": "succeeded",
    }


def event_json(kind: str, obj: dict[str, Any], created: int) -> str:
    return json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "api_version": "2024-06-20",
            "created": created,
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }
    )


@dataclass
class Step:
    """One thing that happened at Stripe: the event it sent, and the account's state after."""

    name: str
    event: str
    intent_status: str
    refunds: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Story:
    pi: str
    steps: list[Step]

    @property
    def final(self) -> Step:
        return self.steps[-1]


def story(names: tuple[str, ...]) -> Story:
    """The events of ``names`` in the order they happened at Stripe (succeeded, then the
    refund's pending → succeeded → failed), each with the account's state right after it."""
    pi, charge, re = (
        f"pi_{uuid.uuid4().hex[:24]}",
        f"ch_{uuid.uuid4().hex[:24]}",
        f"re_{uuid.uuid4().hex[:24]}",
    )
    t0 = int(time.time()) - 600
    steps: list[Step] = []
    for n, name in enumerate(names):
        at = t0 + 60 * n
        if name == "succeeded":
            obj = payment_intent(pi, charge, "succeeded", t0)
            steps.append(Step(name, event_json("payment_intent.succeeded", obj, at), "succeeded"))
            continue
        status = {"pending": "pending", "refunded": "succeeded", "refund_failed": "failed"}[name]
        refund = refund_object(re, pi, charge, status, REFUND, t0 + 60)
        kind = {"pending": "refund.created", "refunded": "refund.updated", "refund_failed": "refund.failed"}[
            name
        ]
        if name == "refunded" and "pending" not in names:
            # An instant card refund: Stripe sends charge.refunded with the charge's refund list.
            body = event_json("charge.refunded", charge_object(charge, pi, [refund], t0), at)
        else:
            body = event_json(kind, refund, at)
        steps.append(Step(name, body, "succeeded", [refund]))
    return Story(pi, steps)


STORIES: list[tuple[str, ...]] = [
    ("succeeded", "pending", "refunded", "refund_failed"),  # refunded, then failed (Stripe: rare)
    ("succeeded", "pending", "refunded"),
    ("succeeded", "pending", "refund_failed"),
    ("succeeded", "pending"),
    ("succeeded", "refunded"),  # charge.refunded of an instant refund
    ("succeeded",),
]


async def paid_in_call(db: Database, pi: str) -> uuid.UUID:
    """A payment request sent in a call with ``pi`` as its PaymentIntent, not paid yet."""
    async with db.transaction() as session:
        shopper = Shopper(id=uuid.uuid4(), display_name="返金 テスト")
        session.add(shopper)
        await session.flush()
        consultation = Consultation(
            id=uuid.uuid4(),
            shopper_id=shopper.id,
            kind=ConsultationKind.VIDEO,
            status=ConsultationStatus.ACTIVE,
        )
        session.add(consultation)
        await session.flush()
        request = PaymentRequest(
            id=uuid.uuid4(),
            consultation_id=consultation.id,
            shopper_id=shopper.id,
            client_key=uuid.uuid4().hex,
            status=PaymentStatus.OPEN,
            provider=PaymentProviderName.STRIPE,
            provider_ref=pi,
            client_secret=f"{pi}_secret_test",
            currency="JPY",
            total_minor=TOTAL,
            refunded_minor=0,
            lines=[
                PaymentRequestLine(
                    id=uuid.uuid4(),
                    position=1,
                    sku="HB-SK-001",
                    name="Serum",
                    quantity=1,
                    unit_price_minor=TOTAL,
                    source=LineSource.CATALOGUE,
                )
            ],
        )
        session.add(request)
        return request.id


async def deliver(client: Any, payload: str) -> tuple[int, dict[str, Any]]:
    header = signature(payload)
    # The exact bytes and header pass Stripe's own verification (what the endpoint runs).
    stripe.Webhook.construct_event(payload, header, WEBHOOK_SECRET)
    async with client.post(
        "/api/v1/payments/stripe/webhook",
        data=payload,
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    ) as response:
        return response.status, await response.json()


async def state_of(db: Database, rid: uuid.UUID) -> dict[str, Any]:
    async with db.read() as session:
        r = await session.get(PaymentRequest, rid)
        assert r is not None
        refunds = (await session.scalars(select(PaymentRefund).where(PaymentRefund.request_id == rid))).all()
        orders = await session.scalar(
            select(func.count()).select_from(ShopOrder).where(ShopOrder.id == r.order_id)
        )
        return {
            "status": r.status.value,
            "refunded_minor": r.refunded_minor,
            "refunds": sorted((x.provider_ref, x.status.value, x.amount_minor) for x in refunds),
            "orders": orders,
            "channel_call": r.order_id is not None,
        }


def expected(s: Story) -> dict[str, Any]:
    """What Stripe's objects say, read the way a person reads the Stripe dashboard."""
    refunds = s.final.refunds
    given_back = sum(x["amount"] for x in refunds if x["status"] == "succeeded")
    status = "paid" if given_back == 0 else ("refunded" if given_back >= TOTAL else "partially_refunded")
    return {
        "status": status,
        "refunded_minor": given_back,
        "refunds": sorted(
            (x["id"], "canceled" if x["status"] == "canceled" else x["status"], x["amount"]) for x in refunds
        ),
        "orders": 1,
        "channel_call": True,
    }


@pytest.mark.parametrize("names", STORIES, ids=["+".join(n) for n in STORIES])
async def test_every_delivery_order_ends_as_stripe_shows(
    client: Any, db: Database, stand_in: tuple[StripeStandIn, str], names: tuple[str, ...]
) -> None:
    fake = stand_in[0]
    runs = 0
    for order in itertools.permutations(range(len(names))):
        s = story(names)
        rid = await paid_in_call(db, s.pi)
        latest = -1
        for index in order:
            # Stripe holds at least the state after the newest event delivered so far.
            latest = max(latest, index)
            fake.intents[s.pi] = payment_intent(s.pi, "ch_x", s.steps[latest].intent_status, 0)
            fake.refunds[s.pi] = s.steps[latest].refunds
            status, body = await deliver(client, s.steps[index].event)
            assert status == 200, body
            assert body["duplicate"] is False
            # Nothing is ever taken as handled-and-dropped.
            assert not body["outcome"].startswith("no payment request"), body
        want = expected(s)
        assert await state_of(db, rid) == want, f"delivery order {[names[i] for i in order]}"
        # Stripe delivers again (at least once): nothing changes.
        for step in s.steps:
            status, body = await deliver(client, step.event)
            assert (status, body["duplicate"]) == (200, True)
        assert await state_of(db, rid) == want
        async with db.read() as session:
            stored = await session.scalar(
                select(func.count())
                .select_from(PaymentWebhookEvent)
                .where(PaymentWebhookEvent.request_id == rid)
            )
        assert stored == len(names)
        runs += 1
    assert runs == len(list(itertools.permutations(names)))

    # Revenue counts what was kept: paid minus succeeded refunds, each payment once.
    async with db.read() as session:
        figures = await revenue_between(session, utcnow() - timedelta(days=1), utcnow() + timedelta(days=1))
        orders = await session.scalar(
            select(func.count()).select_from(ShopOrder).where(ShopOrder.channel == OrderChannel.CALL)
        )
    kept = TOTAL - expected(story(names))["refunded_minor"]
    assert [(f.currency, f.amount_minor, f.paid_consultations) for f in figures] == [
        ("JPY", kept * runs, runs)
    ]
    assert orders == runs


async def test_refund_before_the_payment_is_paid_from_stripes_intent_and_counted(
    client: Any, db: Database, stand_in: tuple[StripeStandIn, str]
) -> None:
    """The issue's case: charge.refunded (everything) before payment_intent.succeeded. Stripe's
    PaymentIntent says succeeded, so the payment is paid and refunded at once; the late
    success changes nothing; revenue is 0."""
    fake = stand_in[0]
    s = story(("succeeded", "refunded"))
    s.final.refunds[0]["amount"] = TOTAL
    s.steps[1].event = event_json(
        "charge.refunded", charge_object("ch_all", s.pi, s.final.refunds, int(time.time())), int(time.time())
    )
    rid = await paid_in_call(db, s.pi)
    fake.intents[s.pi] = payment_intent(s.pi, "ch_all", "succeeded", 0)
    fake.refunds[s.pi] = s.final.refunds
    status, body = await deliver(client, s.steps[1].event)
    assert status == 200
    assert body["outcome"].startswith("paid (from Stripe's PaymentIntent)")
    status, body = await deliver(client, s.steps[0].event)
    assert body["outcome"] == "ignored: already paid"
    state = await state_of(db, rid)
    assert (state["status"], state["refunded_minor"]) == ("refunded", TOTAL)
    async with db.read() as session:
        figures = await revenue_between(session, utcnow() - timedelta(days=1), utcnow() + timedelta(days=1))
    assert [(f.amount_minor, f.paid_consultations) for f in figures] == [(0, 1)]


async def test_stripe_unreachable_means_send_again_not_handled(
    client: Any, db: Database, stand_in: tuple[StripeStandIn, str]
) -> None:
    fake = stand_in[0]
    s = story(("succeeded", "pending", "refunded"))
    rid = await paid_in_call(db, s.pi)
    fake.down = True
    status, body = await deliver(client, s.steps[2].event)
    assert (status, body["error"]["code"]) == (503, "provider_unreachable")
    async with db.read() as session:
        stored = await session.scalar(select(func.count()).select_from(PaymentWebhookEvent))
    assert stored == 0  # not taken as handled: Stripe sends it again
    fake.down = False
    fake.intents[s.pi] = payment_intent(s.pi, "ch_x", "succeeded", 0)
    fake.refunds[s.pi] = s.final.refunds
    status, body = await deliver(client, s.steps[2].event)
    assert status == 200
    assert await state_of(db, rid) == expected(s)
    # An event about a payment that is not ours is stored as such, and Stripe is not asked.
    asked = len(fake.asked)
    stray = refund_object("re_stray", "pi_not_ours", "ch_stray", "succeeded", 100, int(time.time()))
    status, body = await deliver(client, event_json("refund.updated", stray, int(time.time())))
    assert (status, body["outcome"]) == (200, "no payment request has this payment object")
    assert len(fake.asked) == asked


async def test_staff_refund_is_pending_until_stripe_says_and_holds_its_amount(
    live: Any, db: Database, make_staff: Any, stand_in: tuple[StripeStandIn, str]
) -> None:
    """A refund made here goes through the same records: Stripe answers "pending", the
    payment is not counted as refunded yet, the pending amount cannot be refunded twice, and
    Stripe's refund.updated settles it."""
    fake = stand_in[0]
    s = story(("succeeded",))
    rid = await paid_in_call(db, s.pi)
    fake.intents[s.pi] = payment_intent(s.pi, "ch_staff", "succeeded", 0)
    admin = await StaffHttp(live.url).login(await make_staff(Role.ADMIN))
    try:
        status, body = await deliver(live.http, s.steps[0].event)
        assert body["outcome"] == "paid"
        status, out = await admin.request(
            "POST",
            f"/api/v1/payment-requests/{rid}/refunds",
            json={"client_key": key(), "amount_minor": 3000},
        )
        assert status == 201, out
        assert (out["status"], out["refunded_minor"]) == ("paid", 0)
        assert [(x["status"], x["amount_minor"]) for x in out["refunds"]] == [("pending", 3000)]
        # ¥3,000 is on its way back: only ¥2,000 is left to refund.
        status, out = await admin.request(
            "POST",
            f"/api/v1/payment-requests/{rid}/refunds",
            json={"client_key": key(), "amount_minor": 2001},
        )
        assert (status, out["error"]["code"]) == (422, "refund_too_large")
        # Stripe settles it.
        made = fake.refunds[s.pi]
        made[0]["status"] = "succeeded"
        status, body = await deliver(live.http, event_json("refund.updated", made[0], int(time.time())))
        assert body["outcome"] == f"refund {made[0]['id']} succeeded"
        status, out = await admin.request("GET", f"/api/v1/payment-requests/{rid}")
        assert (out["status"], out["refunded_minor"]) == ("partially_refunded", 3000)
        assert [x["status"] for x in out["refunds"]] == ["succeeded"]
        assert out["refunds"][0]["provider_ref"] == made[0]["id"]
    finally:
        await admin.close()
