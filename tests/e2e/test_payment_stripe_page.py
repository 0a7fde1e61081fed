"""The call page's Stripe path in Chromium: with Stripe keys set, the payment sheet loads
Stripe.js, mounts the Payment Element with the PaymentIntent's client secret and calls
``confirmPayment({elements, redirect: "if_required"})``; "paid" comes only with the signed
webhook, to both pages.

Nothing is loaded from the internet: the request for https://js.stripe.com/v3/ is answered
by Playwright with a small hand-written stand-in for Stripe.js (the edge we do not own), which
— like the real one — sends the card to the Stripe API (here localstripe, on this machine) and
never to livedesk. The API calls livedesk makes go to the same localstripe through the real
``stripe`` SDK.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest
import stripe
from playwright.async_api import Page, Request, expect
from pydantic import SecretStr
from sqlalchemy import select

from livedesk.demo import data
from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.kit.db import Database
from livedesk.models import PaymentRequest
from livedesk.settings import Settings
from tests.e2e.conftest import axe_violations
from tests.integration.test_payment_stripe import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    localstripe,
    signature,
    stripe_event,
)

__all__ = ["localstripe"]

ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")
LIP = data.PRODUCTS_BY_SKU["HB-MU-002"]

# A stand-in for Stripe.js with the parts the sheet uses: Stripe(pk).elements({clientSecret})
# .create("payment").mount(el), and confirmPayment({elements, redirect}). Like Stripe.js it
# posts the card to the Stripe API (a PaymentMethod), then confirms the PaymentIntent there.
FAKE_STRIPE_JS = """
window.__stripe = { confirms: [], keys: [] };
window.Stripe = function (publishableKey, options) {
  window.__stripe.keys.push(publishableKey);
  const api = async (path, form) => {
    const response = await fetch(API_BASE + path, {
      method: "POST",
      headers: {
        Authorization: "Bearer " + TEST_SECRET,
        "Content-Type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams(form),
    });
    return response.json();
  };
  return {
    elements({ clientSecret }) {
      const elements = {
        clientSecret,
        create(type) {
          if (type !== "payment") throw new Error("only the Payment Element is faked");
          const element = {
            mount(target) {
              const label = document.createElement("label");
              label.textContent = "Card number";
              const input = document.createElement("input");
              input.className = "fake-card";
              label.append(input);
              target.append(label);
              element.input = input;
            },
            destroy() {},
          };
          elements.element = element;
          return element;
        },
      };
      return elements;
    },
    async confirmPayment({ elements, redirect }) {
      window.__stripe.confirms.push({ redirect });
      const intent = elements.clientSecret.split("_secret_")[0];
      const method = await api("/v1/payment_methods", {
        type: "card",
        "card[number]": elements.element.input.value.replace(/ /g, ""),
        "card[exp_month]": "12",
        "card[exp_year]": "2034",
        "card[cvc]": "123",
      });
      if (method.error) return { error: { message: method.error.message } };
      await api("/v1/payment_intents/" + intent, { payment_method: method.id });
      const confirmed = await api("/v1/payment_intents/" + intent + "/confirm", {});
      if (confirmed.error) return { error: { message: confirmed.error.message } };
      if (confirmed.status !== "succeeded") return { error: { message: "Your card was declined." } };
      return { paymentIntent: confirmed };
    },
  };
};
"""


@pytest.fixture
def e2e_settings(e2e_settings: Settings, localstripe: str) -> Settings:
    """The demo server of conftest, with Stripe keys pointing at localstripe."""
    return e2e_settings.model_copy(
        update={
            "stripe_secret_key": SecretStr(SECRET_KEY),
            "stripe_publishable_key": PUBLISHABLE_KEY,
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "stripe_api_base": localstripe,
        }
    )


async def ready(page: Page) -> None:
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")


async def test_stripe_payment_element_in_the_call_page_and_paid_on_the_webhook(
    server: str, new_page: Any, localstripe: str, e2e_settings: Settings
) -> None:
    console: Page = await new_page(server + "/staff/")
    await ready(console)
    await console.fill("#email", ADVISOR.email)
    await console.fill("#password", DEMO_PASSWORD)
    await console.click("#signin-form button[type=submit]")
    await expect(console.locator("#presence-state")).to_have_attribute("data-status", "available")

    shopper: Page = await new_page(server + "/widget/")
    fake = FAKE_STRIPE_JS.replace("API_BASE", repr(localstripe)).replace("TEST_SECRET", repr(SECRET_KEY))
    stripe_loads: list[str] = []

    async def serve_fake_stripe(route: Any, request: Request) -> None:
        stripe_loads.append(request.url)
        await route.fulfill(body=fake, content_type="application/javascript")

    await shopper.context.route("https://js.stripe.com/v3/", serve_fake_stripe)
    await ready(shopper)
    await shopper.locator("#talk-chat").click()
    card = console.locator(".offer").first
    await expect(card).to_be_visible(timeout=15_000)
    cid = await card.get_attribute("data-consultation-id")
    await card.get_by_role("button", name="Accept").click()
    workspace = console.locator(f'.workspace[data-consultation-id="{cid}"]')
    await expect(workspace).to_be_visible()
    await shopper.wait_for_url(re.compile(r"/call/\?c="), timeout=15_000)

    # Only the call page admits Stripe.js, and only because keys are set.
    async with aiohttp.ClientSession() as http:
        async with http.get(server + "/call/") as response:
            assert "script-src 'self' https://js.stripe.com" in response.headers["Content-Security-Policy"]
        async with http.get(server + "/staff/") as response:
            assert "stripe" not in response.headers["Content-Security-Policy"]

    builder = workspace.locator(".payb")
    await builder.get_by_role("button", name=f"Add {LIP.name_en}").first.click()
    await builder.get_by_role("button", name="Send payment request").click()
    await expect(builder.locator(".payb-request")).to_have_count(1)

    sheet = shopper.locator(".pay-sheet")
    await expect(sheet).to_be_visible(timeout=10_000)
    await expect(sheet.locator(".pay-test-badge")).to_be_visible()  # sk_test_ keys: Stripe's test mode
    await expect(sheet.locator(".pay-secure")).to_contain_text("never see them")
    await expect(sheet.locator(".fake-card")).to_be_visible()
    assert stripe_loads == ["https://js.stripe.com/v3/"]
    assert await shopper.evaluate("window.__stripe.keys") == [PUBLISHABLE_KEY]

    # The card goes to "Stripe"; the sheet waits for the webhook before it says paid.
    await sheet.locator(".fake-card").fill("4242 4242 4242 4242")
    await sheet.get_by_role("button", name=f"Pay ¥{LIP.price:,}").click()
    await expect(sheet.locator(".pay-status")).to_have_text("Confirming your payment…")
    assert await shopper.evaluate("window.__stripe.confirms") == [{"redirect": "if_required"}]
    await expect(sheet).to_have_attribute("data-status", "open")
    assert await axe_violations(shopper) == []

    # Stripe sends the signed webhook; both pages show paid.
    db = Database(e2e_settings.effective_database_url)
    try:
        async with db.read() as session:
            ref = await session.scalar(select(PaymentRequest.provider_ref))
    finally:
        await db.dispose()
    assert ref is not None
    client = stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe})
    intent = await asyncio.to_thread(client.v1.payment_intents.retrieve, ref)
    assert intent.status == "succeeded"
    assert (intent.amount, intent.currency) == (LIP.price, "jpy")
    payload = stripe_event("payment_intent.succeeded", intent)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            server + "/api/v1/payments/stripe/webhook",
            data=payload,
            headers={"Stripe-Signature": signature(payload), "Content-Type": "application/json"},
        ) as response,
    ):
        assert response.status == 200
        assert (await response.json())["outcome"] == "paid"
    await expect(sheet).to_have_attribute("data-status", "paid")
    await expect(sheet.locator(".pay-status")).to_have_text("Paid — thank you!")
    await expect(builder.locator(".payb-request")).to_have_attribute("data-status", "paid")
