"""Card payment inside the call, through the real pages with the sandbox provider (test
mode, no Stripe, nothing from the internet): the advisor builds a payment request in the
console from the catalogue, the shopper's call page shows the payment sheet, a test card is
declined, then the payment goes through; both pages show "paid", the shopper sees the receipt
(order number, items, total and currency) in both languages and at phone width, and the order
is a purchase on the shopper's timeline linked to its payment. Then a supervisor refunds part
of it, and an admin manages the catalogue.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect
from sqlalchemy import select

from livedesk.demo import data
from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.kit.db import Database
from livedesk.models import OrderChannel, ShopOrder, TimelineEvent, TimelineKind
from livedesk.settings import Settings
from tests.e2e.conftest import axe_violations, screenshot, wait_until

ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")
SUPERVISOR = next(s for s in data.STAFF if s.role.value == "supervisor")
ADMIN = next(s for s in data.STAFF if s.role.value == "admin")
SERUM = data.PRODUCTS_BY_SKU["HB-SK-001"]
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


async def keep_screenshot(page: Page, name: str) -> None:
    path = await screenshot(page, name)
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)


async def ready(page: Page) -> None:
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")


async def staff_sign_in(page: Page, email: str) -> None:
    await ready(page)
    await page.fill("#email", email)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")


def yen(amount: int) -> str:
    return f"¥{amount:,}"


async def test_advisor_requests_shopper_pays_in_the_call_and_both_see_paid(
    server: str, new_page: Any, e2e_settings: Settings
) -> None:
    console: Page = await new_page(server + "/staff/")
    await staff_sign_in(console, ADVISOR.email)
    await expect(console.locator("#presence-state")).to_have_attribute("data-status", "available")

    shopper: Page = await new_page(server + "/widget/")
    await ready(shopper)
    await shopper.locator("#talk-video").click()
    card = console.locator(".offer").first
    await expect(card).to_be_visible(timeout=15_000)
    cid = await card.get_attribute("data-consultation-id")
    assert cid
    await card.get_by_role("button", name="Accept").click()
    workspace = console.locator(f'.workspace[data-consultation-id="{cid}"]')
    await expect(workspace).to_be_visible()
    await shopper.wait_for_url(re.compile(r"/call/\?c="), timeout=15_000)
    await expect(shopper.locator("#join-button")).to_be_enabled(timeout=15_000)
    await shopper.locator("#join-button").click()
    await expect(shopper.locator("#view-call")).to_be_visible()

    # The advisor builds the request: two serums from the catalogue and a past purchase.
    builder = workspace.locator(".payb")
    await expect(builder.locator(".payb-catalogue li").first).to_be_visible()
    await builder.get_by_label("Search the catalogue").fill("serum")
    await builder.get_by_role("button", name=f"Add {SERUM.name_en}").first.click()
    await builder.get_by_label(f"Quantity of {SERUM.name_en}").fill("2")
    await builder.get_by_label(f"Quantity of {SERUM.name_en}").press("Tab")
    await expect(builder.locator(".payb-total-amount")).to_have_text(yen(2 * SERUM.price))
    await keep_screenshot(console, "console-payment-desktop")
    await builder.get_by_role("button", name="Send payment request").click()
    await expect(builder.locator(".payb-notice")).to_have_text(
        f"Payment request for {yen(2 * SERUM.price)} sent."
    )
    await expect(builder.locator(".payb-request")).to_have_count(1)
    await expect(builder.locator(".payb-test")).to_be_visible()

    # The shopper's payment sheet appears over the call, labelled as test mode.
    sheet = shopper.locator(".pay-sheet")
    await expect(sheet).to_be_visible(timeout=10_000)
    await expect(sheet.locator(".pay-test-badge")).to_have_text("Test mode")
    await expect(sheet.locator(".pay-total-amount")).to_have_text(yen(2 * SERUM.price))
    await expect(sheet.locator(".pay-lines li")).to_have_count(1)
    pay = sheet.get_by_role("button", name=f"Pay {yen(2 * SERUM.price)} (test card)")
    await expect(pay).to_be_enabled()
    assert await axe_violations(shopper) == []
    await keep_screenshot(shopper, "call-payment-desktop")

    # A reload of the call page brings the sheet back (the request is read from the server).
    await shopper.reload()
    await expect(shopper.locator("#view-call")).to_be_visible(timeout=15_000)
    await expect(sheet).to_be_visible(timeout=10_000)
    await expect(sheet.locator(".pay-total-amount")).to_have_text(yen(2 * SERUM.price))
    await shopper.set_viewport_size({"width": 390, "height": 844})
    await keep_screenshot(shopper, "call-payment-phone")
    # In Japanese too, product names included.
    await shopper.locator("[data-lang-switch] button[data-lang=ja]").click()
    await expect(sheet.locator("#pay-title")).to_have_text("お支払い")
    await expect(sheet.locator(".pay-test-badge")).to_have_text("テストモード")
    await expect(sheet.locator(".pay-line-name")).to_have_text(SERUM.name_ja)
    await screenshot(shopper, "call-payment-phone-ja")
    await shopper.locator("[data-lang-switch] button[data-lang=en]").click()
    await shopper.set_viewport_size({"width": 1280, "height": 800})
    await expect(sheet.locator("#pay-title")).to_have_text("Payment")

    # A declined test card: both are told, the request stays open.
    await sheet.get_by_role("button", name="Test: a declined card").click()
    await expect(sheet.locator(".pay-error")).to_contain_text("did not go through")
    await expect(builder.locator(".payb-request")).to_have_attribute("data-status", "open")

    await pay.click()
    await expect(sheet).to_have_attribute("data-status", "paid")
    await expect(sheet.locator(".pay-status")).to_have_text("Paid — thank you!")
    await expect(builder.locator(".payb-request")).to_have_attribute("data-status", "paid")
    await expect(builder.locator(".payb-request-status")).to_have_text("Paid — thank you!")
    assert await axe_violations(console) == []

    # The shopper's receipt in the call: order number, items, amount and currency.
    receipt = sheet.locator(".pay-receipt")
    await expect(receipt).to_be_visible()
    await expect(receipt.get_by_role("heading", name="Receipt")).to_be_visible()
    await expect(receipt.locator(".pay-order-number")).to_have_text(re.compile(r"^LD-\w{4}-\w{4}$"))
    number = await receipt.locator(".pay-order-number").inner_text()
    await expect(receipt.locator(".pay-receipt-row").last).to_have_text(f"Total (JPY){yen(2 * SERUM.price)}")
    await expect(sheet.locator(".pay-lines li")).to_have_count(1)
    await expect(sheet.locator(".pay-line-name")).to_have_text(SERUM.name_en)
    await expect(sheet.locator(".pay-intro")).to_have_text("Thank you! Here is your receipt.")
    assert await axe_violations(shopper) == []
    await keep_screenshot(shopper, "call-receipt-desktop")
    await shopper.set_viewport_size({"width": 390, "height": 844})
    await shopper.locator("[data-lang-switch] button[data-lang=ja]").click()
    await expect(receipt.get_by_role("heading", name="領収書")).to_be_visible()
    await expect(receipt).to_contain_text("ご注文番号")
    await expect(receipt).to_contain_text("合計（JPY）")
    await expect(sheet.locator(".pay-line-name")).to_have_text(SERUM.name_ja)
    assert await axe_violations(shopper) == []
    await keep_screenshot(shopper, "call-receipt-phone-ja")
    await shopper.locator("[data-lang-switch] button[data-lang=en]").click()
    await shopper.set_viewport_size({"width": 1280, "height": 800})

    # The order is on the shopper's timeline.
    db = Database(e2e_settings.effective_database_url)
    try:
        async with db.read() as session:
            order = (
                await session.scalars(select(ShopOrder).where(ShopOrder.channel == OrderChannel.CALL))
            ).one()
            assert order.total_minor == 2 * SERUM.price
            events = (
                await session.scalars(
                    select(TimelineEvent).where(
                        TimelineEvent.shopper_id == order.shopper_id,
                        TimelineEvent.kind == TimelineKind.PAYMENT,
                        TimelineEvent.consultation_id == uuid.UUID(cid),
                    )
                )
            ).all()
            assert sorted(e.data["status"] for e in events) == ["failed", "paid", "requested"]
            paid = next(e for e in events if e.data["status"] == "paid")
            assert paid.data["order_id"] == str(order.id)
            # The order is a purchase on the timeline, linked to the payment it was paid by.
            assert order.external_id == number
            purchase = (
                await session.scalars(
                    select(TimelineEvent).where(
                        TimelineEvent.shopper_id == order.shopper_id,
                        TimelineEvent.kind == TimelineKind.SHOP_ORDER,
                    )
                )
            ).one()
            assert purchase.ref_id == str(order.id)
            assert purchase.data["payment_request_id"] == paid.data["payment_request_id"]
            assert purchase.data["order_number"] == number
    finally:
        await db.dispose()

    # Other console panels add items through addToPaymentRequest (the module's export).
    add = "async ([id, item]) => (await import('/shared/customer/payment.js')).addToPaymentRequest(id, item)"
    assert await console.evaluate(add, [cid, {"sku": "HB-MU-002", "quantity": 2}]) is True
    await expect(builder.locator(".payb-cart li")).to_have_count(1)
    await expect(
        builder.get_by_label(f"Quantity of {data.PRODUCTS_BY_SKU['HB-MU-002'].name_en}")
    ).to_have_value("2")
    assert await console.evaluate(add, [cid, {"sku": "NO-SUCH-SKU"}]) is False
    assert await console.evaluate(add, [str(uuid.uuid4()), {"sku": "HB-MU-002"}]) is False

    # The sheet can be put away and brought back.
    await sheet.get_by_role("button", name="Hide the payment").click()
    await expect(sheet).to_be_hidden()
    await shopper.get_by_role("button", name=f"Payment: {yen(2 * SERUM.price)}").click()
    await expect(sheet).to_be_visible()

    # A supervisor refunds part of it on the payments page.
    supervisor: Page = await new_page(server + "/staff/")
    await staff_sign_in(supervisor, SUPERVISOR.email)

    async def signed_in() -> bool:
        return any(c["name"] == "livedesk_session" for c in await supervisor.context.cookies())

    await wait_until(signed_in)
    await supervisor.goto(server + "/payments/refunds.html")
    await ready(supervisor)
    row = supervisor.locator("#ref-rows tr").first
    await expect(row).to_have_attribute("data-status", "paid")
    await row.get_by_label(f"Amount to refund for the payment of {yen(2 * SERUM.price)}").fill("1000")
    await row.get_by_label(f"Reason for refunding the payment of {yen(2 * SERUM.price)}").fill(
        "Gift wrap missing"
    )
    await row.get_by_role("button", name="Refund").click()
    await expect(supervisor.locator("#ref-status")).to_have_text("Refunded ¥1,000.")
    await expect(row).to_have_attribute("data-status", "partially_refunded")
    await expect(sheet.locator(".pay-status")).to_have_text("Paid, partly refunded")
    assert await axe_violations(supervisor) == []
    await expect(row.locator(".ref-order")).to_have_text(number)
    await screenshot(supervisor, "payments-refunds-after-call")


async def test_admin_manages_the_catalogue(server: str, new_page: Any) -> None:
    page: Page = await new_page(server + "/admin/")
    await ready(page)
    await page.locator("#signin-email").fill(ADMIN.email)
    await page.locator("#signin-password").fill(DEMO_PASSWORD)
    await page.locator("#signin-form button[type=submit]").click()
    await expect(page.locator("#admin-panel")).to_be_visible()
    await page.get_by_role("link", name="Product catalogue").click()
    await ready(page)
    await expect(page.locator("#cat-rows tr")).to_have_count(len(data.CATALOGUE))
    serum = page.locator('#cat-rows tr[data-sku="HB-SK-001"]')
    await expect(serum.locator("td").nth(3)).to_have_text(yen(SERUM.price))

    await page.get_by_label("SKU").fill("HB-GIFT-001")
    await page.get_by_label("Name (English)").fill("Gift Box")
    await page.get_by_label("Price").fill("12.5")
    await page.get_by_role("button", name="Add product").click()
    await expect(page.locator("#cat-form-error")).to_have_text("Enter a price like 1200 or 12.34.")
    await page.get_by_label("Price").fill("550")
    await page.get_by_role("button", name="Add product").click()
    await expect(page.locator("#cat-status")).to_have_text("Gift Box added.")
    await expect(page.locator("#cat-rows tr")).to_have_count(len(data.CATALOGUE) + 1)

    await serum.get_by_role("button", name=f"Withdraw {SERUM.name_en}").click()
    await expect(serum.locator("td").nth(4)).to_have_text("Withdrawn")
    assert await axe_violations(page) == []
    await page.evaluate("window.scrollTo(0, 0)")
    await keep_screenshot(page, "admin-catalogue-desktop")

    # An advisor is told the page is for admins.
    advisor: Page = await new_page(server + "/staff/")
    await staff_sign_in(advisor, ADVISOR.email)
    await expect(advisor.locator("#presence-state")).to_be_visible()
    await advisor.goto(server + "/admin/catalogue.html")
    await ready(advisor)
    await expect(advisor.locator("#cat-denied")).to_be_visible()
    await expect(advisor.locator("#cat-panel")).to_be_hidden()
