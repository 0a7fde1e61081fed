"""Booking with a deposit, in a real browser (Chromium) against the demo on the sandbox: a
shopper books the make-up lesson (¥1,000 deposit) — the page shows the amount and what
happens to it on cancel or a no-show, the test card is declined, then pays; the booking then
waits only for its mail link, and once confirmed its page shows the deposit paid. English at
desktop width; accessibility (axe) on the payment step."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect
from sqlalchemy import select

from livedesk.kit.db import Database
from livedesk.models import BookingPayment, BookingStatus
from livedesk.settings import Settings
from tests.e2e.test_booking_pages import (  # noqa: F401 (fixtures)
    booking_of,
    confirm_link_of,
    e2e_settings,
    london_page,
    no_violations,
    open_outbox,
    port,
    server,
)


async def test_a_deposit_is_shown_with_its_policy_paid_on_the_sandbox_and_then_shown_paid(
    server: str,  # noqa: F811
    london_page: Any,  # noqa: F811
    e2e_settings: Settings,  # noqa: F811
) -> None:
    page = await london_page(f"{server}/booking/")
    await page.get_by_role("button", name=re.compile("Make-up lesson")).click()
    await page.locator("[data-advisor=any]").click()
    await page.locator("button.slot").first.click()
    await page.locator("#contact-name").fill("Olivia Green")
    await page.locator("#contact-email").fill("olivia.green@example.co.uk")
    await page.locator("#contact-submit").click()

    # The payment step: the amount in yen and its policy, in test mode.
    await expect(page.locator("#view-pay")).to_be_visible()
    await expect(page.locator("#pay-title")).to_have_text("Pay to confirm your booking")
    await expect(page.locator("#pay-amount")).to_have_text(re.compile("Deposit to pay now: [¥￥]1,000$"))
    await expect(page.locator("#pay-policy")).to_have_text(
        "The deposit is taken now. If you cancel, it is refunded in full; if you do not come, it is kept."
    )
    await expect(page.locator("#pay-test-mode")).to_be_visible()
    await expect(page.locator("#pay-stripe")).to_be_hidden()
    await no_violations(page)

    # Declined: said so, still on the payment step.
    await page.locator("#pay-sandbox-decline").click()
    await expect(page.locator("#pay-failure")).to_have_text(
        "The payment did not go through. Please try again or use another card."
    )
    await expect(page.locator("#pay-title")).to_be_visible()
    # Paid: the anonymous booking now waits only for its mail link.
    await page.locator("#pay-sandbox-pay").click()
    await expect(page.locator("#view-pending")).to_be_visible()
    await expect(page.locator("#pending-title")).to_have_text("Check your mail")

    db = Database(e2e_settings.effective_database_url)
    try:
        booking = await booking_of(db, "olivia.green@example.co.uk")
        assert booking.status == BookingStatus.PENDING
        async with db.read() as session:
            paid = (
                await session.scalars(select(BookingPayment).where(BookingPayment.booking_id == booking.id))
            ).one()
        assert (paid.status.value, paid.amount_minor, paid.currency, paid.purpose) == (
            "paid",
            1000,
            "JPY",
            "deposit",
        )

        outbox = await open_outbox(page)
        link = await confirm_link_of(outbox, "olivia.green@example.co.uk")
        await link.click()
        await outbox.locator("#confirm-button").click()
        await expect(outbox.locator("#done-title")).to_have_text("Your booking is confirmed")
        # The booked call's page shows the deposit paid.
        await expect(outbox.locator("#done-summary")).to_contain_text("Deposit")
        await expect(outbox.locator("#done-summary")).to_contain_text(
            re.compile("[¥￥]1,000 — paid \\(test mode\\)")
        )
        await no_violations(outbox)
        assert (await booking_of(db, "olivia.green@example.co.uk")).status == BookingStatus.CONFIRMED
    finally:
        await db.dispose()
