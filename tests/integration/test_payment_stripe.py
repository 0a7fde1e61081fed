"""Payments through Stripe: the real ``stripe`` SDK against a local Stripe-compatible server
(localstripe, run as a process of its own), behind a small recording proxy so the tests can
read what livedesk sent (amounts, currencies, metadata, idempotency keys). Webhooks are signed
with Stripe's scheme (``t=…,v1=HMAC-SHA256``) and posted to the real endpoint.

The shopper's browser part (Stripe.js confirming the PaymentIntent) is played by the SDK with
test cards, as Stripe.js would: livedesk never sees a card number either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
import stripe
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import func, select

from livedesk.app import create_app
from livedesk.kit.db import Database
from livedesk.models import OrderChannel, PaymentWebhookEvent, Role, ShopOrder, TimelineEvent, TimelineKind
from livedesk.settings import Settings
from tests.conftest import wait_until
from tests.integration.test_payments import StaffHttp, active_call, add_products, key

SECRET_KEY = "sk_test_livedesk_local"
PUBLISHABLE_KEY = "pk_test_livedesk_local"
WEBHOOK_SECRET = "whsec_livedesk_test_secret"


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    """localstripe on a free port, started once for this module and stopped by its PID."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("localstripe did not start") from None
            time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


class Recorder:
    """A pass-through proxy in front of localstripe that keeps every request it forwards."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "idempotency_key": request.headers.get("Idempotency-Key"),
                "form": dict(parse_qsl(body.decode())),
            }
        )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                request.method, self.upstream + request.path_qs, data=body, headers=headers
            ) as upstream,
        ):
            return web.Response(
                body=await upstream.read(), status=upstream.status, content_type="application/json"
            )

    def posts(self, path_prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"].startswith(path_prefix)]


@pytest.fixture
async def recorder(localstripe: str) -> AsyncIterator[tuple[Recorder, str]]:
    rec = Recorder(localstripe)
    proxy = web.Application()
    proxy.router.add_route("*", "/{tail:.*}", rec.handle)
    server = TestServer(proxy, host="127.0.0.1")
    await server.start_server()
    try:
        yield rec, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
def settings(settings: Settings, recorder: tuple[Recorder, str]) -> Settings:
    return settings.model_copy(
        update={
            "presence_grace_seconds": 0.0,
            "stripe_secret_key": SecretStr(SECRET_KEY),
            "stripe_publishable_key": PUBLISHABLE_KEY,
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "stripe_api_base": recorder[1],
        }
    )


@pytest.fixture
def sdk(localstripe: str) -> stripe.StripeClient:
    """The browser's side (Stripe.js), played by the SDK straight against localstripe."""
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe})


@pytest.fixture
async def products(db: Database) -> None:
    await add_products(db)


def signature(payload: str, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def stripe_event(kind: str, obj: Any, *, event_id: str | None = None, created: int | None = None) -> str:
    data = json.loads(str(obj)) if not isinstance(obj, dict) else obj
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": kind,
            "created": created or int(time.time()),
            "livemode": False,
            "data": {"object": data},
        }
    )


async def post_webhook(client: Any, payload: str, sig: str | None = "sign") -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if sig == "sign":
        headers["Stripe-Signature"] = signature(payload)
    elif sig is not None:
        headers["Stripe-Signature"] = sig
    async with client.post("/api/v1/payments/stripe/webhook", data=payload, headers=headers) as response:
        return response.status, await response.json()


async def pay_with(sdk: stripe.StripeClient, intent_id: str, card: str) -> Any:
    """What Stripe.js does in the shopper's browser: a card payment method, then confirm."""

    def run() -> Any:
        method = sdk.v1.payment_methods.create(
            params={"type": "card", "card": {"number": card, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
        )
        sdk.v1.payment_intents.update(intent_id, params={"payment_method": method.id})
        with contextlib.suppress(stripe.CardError):
            sdk.v1.payment_intents.confirm(intent_id)
        return sdk.v1.payment_intents.retrieve(intent_id)

    return await asyncio.to_thread(run)


async def _send(call: Any, lines: list[dict[str, Any]], client_key: str | None = None) -> tuple[int, Any]:
    return await call.advisor.request(
        "POST",
        f"/api/v1/consultations/{call.consultation_id}/payment-requests",
        json={"client_key": client_key or key(), "lines": lines},
    )


async def _checkout(live: Any, call: Any, rid: str) -> dict[str, Any]:
    async with live.http.post(f"/api/v1/payment-requests/{rid}/checkout", headers=call.bearer) as r:
        assert r.status == 200, await r.text()
        result: dict[str, Any] = await r.json()
        return result


async def test_payment_intents_carry_metadata_idempotency_keys_and_right_amounts_jpy_and_usd(
    live: Any, make_staff: Any, products: None, recorder: tuple[Recorder, str], sdk: stripe.StripeClient
) -> None:
    rec = recorder[0]
    call = await active_call(live, await make_staff(Role.ADVISOR))
    try:
        client_key = key()
        status, jpy = await _send(call, [{"sku": "HB-SK-001", "quantity": 2}], client_key)
        assert status == 201, jpy
        assert jpy["provider"] == "stripe"
        assert jpy["test_mode"] is True
        status, again = await _send(call, [{"sku": "HB-SK-001", "quantity": 2}], client_key)
        assert status == 200
        assert again["id"] == jpy["id"]
        status, usd = await _send(call, [{"sku": "US-TOTE"}, {"sku": "US-SCARF"}])
        assert status == 201

        creates = rec.posts("/v1/payment_intents")
        # One PaymentIntent per request, however often it is sent.
        assert len(creates) == 2
        first, second = creates
        assert (first["form"]["amount"], first["form"]["currency"]) == ("17600", "jpy")  # no minor unit
        assert (second["form"]["amount"], second["form"]["currency"]) == ("6233", "usd")  # cents
        assert first["form"]["metadata[livedesk_payment_request_id]"] == jpy["id"]
        assert first["form"]["metadata[livedesk_consultation_id]"] == call.consultation_id
        assert first["idempotency_key"] == f"livedesk-payment-request-{jpy['id']}"
        assert second["idempotency_key"] == f"livedesk-payment-request-{usd['id']}"

        sheet = await _checkout(live, call, jpy["id"])
        assert sheet["provider"] == "stripe"
        assert sheet["publishable_key"] == PUBLISHABLE_KEY
        assert sheet["client_secret"].startswith("pi_")
        intent = await asyncio.to_thread(
            sdk.v1.payment_intents.retrieve, sheet["client_secret"].split("_secret_")[0]
        )
        assert intent.amount == 17600
        assert intent.currency == "jpy"
        assert intent.metadata["livedesk_shopper_id"] == call.shopper_id
        # The advisor never gets the client secret.
        status, _ = await call.advisor.request("POST", f"/api/v1/payment-requests/{jpy['id']}/checkout")
        assert status == 403

        # The call page admits Stripe.js now, and only the call page.
        async with live.http.get("/call/") as r:
            policy = r.headers["Content-Security-Policy"]
        assert "script-src 'self' https://js.stripe.com" in policy
        assert "frame-src 'self' https://js.stripe.com https://hooks.stripe.com" in policy
        async with live.http.get("/widget/") as r:
            assert "stripe" not in r.headers["Content-Security-Policy"]
    finally:
        await call.advisor.close()


async def test_signed_webhook_fulfils_exactly_once_and_both_see_paid(
    live: Any, make_staff: Any, products: None, db: Database, sdk: stripe.StripeClient
) -> None:
    call = await active_call(live, await make_staff(Role.ADVISOR))
    try:
        _, made = await _send(call, [{"sku": "US-TOTE", "quantity": 3}])
        sheet = await _checkout(live, call, made["id"])
        intent_id = sheet["client_secret"].split("_secret_")[0]
        intent = await pay_with(sdk, intent_id, "4242424242424242")
        assert intent.status == "succeeded"
        # Paid at Stripe, but fulfilment waits for the signed webhook.
        async with live.http.get(f"/api/v1/payment-requests/{made['id']}", headers=call.bearer) as r:
            assert (await r.json())["status"] == "open"

        payload = stripe_event("payment_intent.succeeded", intent, event_id="evt_paid_once")
        # The same event delivered three times, two of them at once.
        results = [await post_webhook(live.http, payload)]
        results += await asyncio.gather(post_webhook(live.http, payload), post_webhook(live.http, payload))
        assert all(status == 200 for status, _ in results)
        assert [b["duplicate"] for _, b in results] == [False, True, True]
        assert results[0][1]["outcome"] == "paid"

        await call.shopper.wait_for("payment.updated", lambda p: p["status"] == "paid")
        await call.console.wait_for("payment.updated", lambda p: p["status"] == "paid")
        async with db.read() as session:
            orders = (
                await session.scalars(select(ShopOrder).where(ShopOrder.channel == OrderChannel.CALL))
            ).all()
            assert [(o.total_minor, o.currency) for o in orders] == [(3702, "USD")]
            paid = await session.scalar(
                select(func.count())
                .select_from(TimelineEvent)
                .where(TimelineEvent.kind == TimelineKind.PAYMENT, TimelineEvent.summary.like("Paid $37.02%"))
            )
            assert paid == 1
            stored = await session.scalar(select(func.count()).select_from(PaymentWebhookEvent))
            assert stored == 1
    finally:
        await call.advisor.close()


async def test_declined_card_and_out_of_order_events(
    live: Any, make_staff: Any, products: None, db: Database, sdk: stripe.StripeClient
) -> None:
    call = await active_call(live, await make_staff(Role.ADVISOR))
    try:
        _, made = await _send(call, [{"sku": "HB-MU-002"}])
        rid = made["id"]
        intent_id = (await _checkout(live, call, rid))["client_secret"].split("_secret_")[0]
        declined = await pay_with(sdk, intent_id, "4000000000000341")
        assert declined.status == "requires_payment_method"
        assert declined.last_payment_error["code"] == "card_declined"
        failed_at = int(time.time())
        status, body = await post_webhook(
            live.http, stripe_event("payment_intent.payment_failed", declined, created=failed_at)
        )
        assert (status, body["outcome"]) == (200, "failed")
        seen = await call.shopper.wait_for("payment.updated", lambda p: p["failure_code"] == "card_declined")
        assert seen["status"] == "open"

        # Another request is paid; a late "processing" and a stale "payment_failed" about it
        # arrive after the "succeeded": paid stays paid.
        _, other = await _send(call, [{"sku": "HB-SK-001"}])
        other_intent = (await _checkout(live, call, other["id"]))["client_secret"].split("_secret_")[0]
        succeeded = await pay_with(sdk, other_intent, "4242424242424242")
        assert succeeded.status == "succeeded"
        status, body = await post_webhook(live.http, stripe_event("payment_intent.succeeded", succeeded))
        assert body["outcome"] == "paid"
        stale = json.loads(str(succeeded))
        stale["status"] = "requires_payment_method"
        stale["last_payment_error"] = {"code": "card_declined", "message": "Your card was declined."}
        late = [
            stripe_event("payment_intent.processing", succeeded, created=failed_at - 5),
            stripe_event("payment_intent.payment_failed", stale, created=failed_at - 1),
        ]
        for payload in late:
            status, body = await post_webhook(live.http, payload)
            assert status == 200
            assert body["outcome"] == "ignored: request is paid"
        async with live.http.get(f"/api/v1/payment-requests/{other['id']}", headers=call.bearer) as r:
            final = await r.json()
        assert final["status"] == "paid"
        assert final["failure_code"] is None
        # The declined one is still open for another try.
        async with live.http.get(f"/api/v1/payment-requests/{rid}", headers=call.bearer) as r:
            assert (await r.json())["status"] == "open"

        # Types we do not act on are acknowledged and not stored; unknown payments are stored.
        status, body = await post_webhook(live.http, stripe_event("customer.created", {"id": "cus_123"}))
        assert status == 200
        assert body["outcome"] == "ignored: event type not handled"
        stray = stripe_event("payment_intent.succeeded", {"id": "pi_not_ours", "object": "payment_intent"})
        status, body = await post_webhook(live.http, stray)
        assert status == 200
        assert body["outcome"] == "no payment request has this payment object"
        async with db.read() as session:
            types = (await session.scalars(select(PaymentWebhookEvent.event_type))).all()
        assert "customer.created" not in types
    finally:
        await call.advisor.close()


async def test_webhook_signature_good_bad_missing_and_no_secret(live: Any, settings: Settings) -> None:
    payload = stripe_event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"})
    status, body = await post_webhook(live.http, payload, sig=None)
    assert (status, body["error"]["code"]) == (400, "signature_missing")
    status, body = await post_webhook(live.http, payload, sig=signature(payload, secret="whsec_wrong"))
    assert (status, body["error"]["code"]) == (400, "signature_invalid")
    status, body = await post_webhook(live.http, payload, sig=signature(payload, at=int(time.time()) - 3600))
    assert (status, body["error"]["code"]) == (400, "signature_invalid")  # too old: a replay
    tampered = payload.replace("pi_x", "pi_y")
    status, body = await post_webhook(live.http, tampered, sig=signature(payload))
    assert (status, body["error"]["code"]) == (400, "signature_invalid")
    status, body = await post_webhook(live.http, "not json", sig=signature("not json"))
    assert (status, body["error"]["code"]) == (400, "payload_invalid")
    status, body = await post_webhook(live.http, payload)
    assert status == 200

    unconfigured = settings.model_copy(update={"stripe_webhook_secret": SecretStr("")})
    async with TestClient(TestServer(create_app(unconfigured))) as other:
        status, body = await post_webhook(other, payload)
        assert (status, body["error"]["code"]) == (404, "not_found")


async def test_refunds_go_to_stripe_once_and_dashboard_refunds_are_caught_up(
    live: Any,
    make_staff: Any,
    products: None,
    recorder: tuple[Recorder, str],
    sdk: stripe.StripeClient,
) -> None:
    rec = recorder[0]
    call = await active_call(live, await make_staff(Role.ADVISOR))
    admin = await StaffHttp(live.url).login(await make_staff(Role.ADMIN))
    try:
        _, made = await _send(call, [{"sku": "HB-SK-001"}])
        rid = made["id"]
        intent_id = (await _checkout(live, call, rid))["client_secret"].split("_secret_")[0]
        intent = await pay_with(sdk, intent_id, "4242424242424242")
        await post_webhook(live.http, stripe_event("payment_intent.succeeded", intent))

        refund = {"client_key": key(), "amount_minor": 800, "reason": "Goodwill"}
        status, after = await admin.request("POST", f"/api/v1/payment-requests/{rid}/refunds", json=refund)
        assert status == 201, after
        status, _ = await admin.request("POST", f"/api/v1/payment-requests/{rid}/refunds", json=refund)
        assert status == 200
        sent = rec.posts("/v1/refunds")
        assert len(sent) == 1
        assert sent[0]["form"]["amount"] == "800"
        assert sent[0]["form"]["payment_intent"] == intent_id
        assert sent[0]["idempotency_key"] == f"livedesk-refund-{rid}-{refund['client_key']}"

        # Stripe's own charge.refunded for that refund changes nothing …
        charge = await asyncio.to_thread(sdk.v1.charges.retrieve, intent.latest_charge.id)
        assert charge.amount_refunded == 800
        status, body = await post_webhook(live.http, stripe_event("charge.refunded", charge))
        assert body["outcome"] == "ignored: refunds already known"
        # … a refund made in the Stripe dashboard is caught up.
        await asyncio.to_thread(sdk.v1.refunds.create, params={"payment_intent": intent_id, "amount": 1000})
        charge = await asyncio.to_thread(sdk.v1.charges.retrieve, intent.latest_charge.id)
        status, body = await post_webhook(live.http, stripe_event("charge.refunded", charge))
        assert body["outcome"].startswith("refund re_")
        assert body["outcome"].endswith(" succeeded")

        async def refunded() -> Any:
            _status, now = await admin.request("GET", f"/api/v1/payment-requests/{rid}")
            return now if now["refunded_minor"] == 1800 else None

        final = await wait_until(refunded)
        assert final["status"] == "partially_refunded"
        assert sorted(x["amount_minor"] for x in final["refunds"]) == [800, 1000]
        assert {x["status"] for x in final["refunds"]} == {"succeeded"}
    finally:
        await call.advisor.close()
        await admin.close()
