"""Deposits at booking through Stripe: the real ``stripe`` SDK against localstripe (behind
the recording proxy of ``test_payment_stripe``), signed webhooks. A type that holds makes a
PaymentIntent with ``capture_method=manual``; the authorisation (``requires_capture``,
``payment_intent.amount_capturable_updated``) confirms the booking; a no-show captures it at
Stripe. A type that charges is refunded at Stripe on cancel. JPY in whole yen."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import stripe
from pydantic import SecretStr
from sqlalchemy import update

from livedesk.kit.context import DB
from livedesk.models import Booking, BookingStatus
from livedesk.settings import Settings
from tests.integration.test_booking_api import Client, booking_body, next_slot
from tests.integration.test_booking_deposits import booking_of, post, settled, world
from tests.integration.test_payment_stripe import (  # noqa: F401 (fixtures)
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    Recorder,
    localstripe,
    pay_with,
    post_webhook,
    recorder,
    sdk,
    stripe_event,
)


@pytest.fixture
def settings(settings: Settings, recorder: tuple[Recorder, str]) -> Settings:  # noqa: F811
    return settings.model_copy(
        update={
            "booking_rate_limit": "1000/minute",
            "booking_confirm_by_mail": False,
            "booking_job_seconds": 0.2,
            "stripe_secret_key": SecretStr(SECRET_KEY),
            "stripe_publishable_key": PUBLISHABLE_KEY,
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "stripe_api_base": recorder[1],
        }
    )


async def test_a_hold_is_authorised_at_stripe_and_captured_on_a_no_show(
    client: Client,
    make_staff: Any,
    recorder: tuple[Recorder, str],  # noqa: F811
    sdk: stripe.StripeClient,  # noqa: F811
) -> None:
    rec = recorder[0]
    w = await world(
        client, make_staff, deposit_amount=2200, price_amount=8800, payment_capture="hold", horizon_days=6
    )
    status, made = await post(client, "/api/v1/bookings", booking_body(w["type"]["id"], next_slot(180)))
    assert status == 201, made
    token, booking_id = made["token"], made["booking"]["id"]
    status, sheet = await post(client, "/api/v1/bookings/payment", {"token": token})
    assert status == 200, sheet
    assert (sheet["provider"], sheet["publishable_key"]) == ("stripe", PUBLISHABLE_KEY)
    created = rec.posts("/v1/payment_intents")
    assert len(created) == 1
    form = created[0]["form"]
    assert (form["amount"], form["currency"], form["capture_method"]) == ("2200", "jpy", "manual")
    assert form["metadata[livedesk_booking_id]"] == booking_id
    assert created[0]["idempotency_key"] == f"livedesk-booking-payment-{sheet['payment_id']}"

    # The shopper's browser confirms with Stripe.js (played by the SDK): authorised, not taken.
    intent_id = sheet["client_secret"].split("_secret_")[0]
    intent = await pay_with(sdk, intent_id, "4242424242424242")
    assert intent.status == "requires_capture"
    assert (await booking_of(client, token))["status"] == "pending"  # only Stripe's event confirms
    status, body = await post_webhook(
        client, stripe_event("payment_intent.amount_capturable_updated", intent)
    )
    assert (status, body["outcome"]) == (200, "booking held")
    shown = await booking_of(client, token)
    assert (shown["status"], shown["payment"]["status"], shown["payment"]["test_mode"]) == (
        "confirmed",
        "held",
        False,
    )

    async with client.app[DB].transaction() as session:
        await session.execute(
            update(Booking)
            .where(Booking.id == uuid.UUID(booking_id))
            .values(status=BookingStatus.NO_SHOW_SHOPPER)
        )
    row = await settled(client, booking_id, "paid")
    assert row.kept_minor == 2200
    captures = [r for r in rec.posts(f"/v1/payment_intents/{intent_id}/capture")]
    assert len(captures) == 1
    assert captures[0]["idempotency_key"] == f"livedesk-booking-capture-{sheet['payment_id']}"
    now = await asyncio.to_thread(sdk.v1.payment_intents.retrieve, intent_id)
    assert (now.status, now.amount) == ("succeeded", 2200)
    # Stripe's own succeeded event for the capture changes nothing more.
    status, body = await post_webhook(client, stripe_event("payment_intent.succeeded", now))
    assert body["outcome"] == "ignored: booking payment is paid"


async def test_a_charged_deposit_is_refunded_at_stripe_on_cancel(
    client: Client,
    make_staff: Any,
    recorder: tuple[Recorder, str],  # noqa: F811
    sdk: stripe.StripeClient,  # noqa: F811
) -> None:
    rec = recorder[0]
    # The booking page admits Stripe.js (the Payment Element) with Stripe keys set.
    async with client.get("/booking/") as r:
        assert "script-src 'self' https://js.stripe.com" in r.headers["Content-Security-Policy"]
    w = await world(client, make_staff, deposit_amount=1000)
    status, made = await post(client, "/api/v1/bookings", booking_body(w["type"]["id"], next_slot(180)))
    token, booking_id = made["token"], made["booking"]["id"]
    status, sheet = await post(client, "/api/v1/bookings/payment", {"token": token})
    assert "capture_method" not in rec.posts("/v1/payment_intents")[0]["form"]
    intent = await pay_with(sdk, sheet["client_secret"].split("_secret_")[0], "4242424242424242")
    assert intent.status == "succeeded"
    status, body = await post_webhook(client, stripe_event("payment_intent.succeeded", intent))
    assert body["outcome"] == "booking paid"
    assert (await booking_of(client, token))["status"] == "confirmed"
    status, _ = await post(client, "/api/v1/bookings/cancel", {"token": token, "reason": "急用"})
    assert status == 200
    await settled(client, booking_id, "refunded")
    refunds = rec.posts("/v1/refunds")
    assert len(refunds) == 1
    assert (refunds[0]["form"]["amount"], refunds[0]["form"]["payment_intent"]) == ("1000", intent.id)
    charge = await asyncio.to_thread(sdk.v1.charges.retrieve, intent.latest_charge.id)
    assert charge.amount_refunded == 1000
