"""Staff navigation and the refunds page in a real browser with the demo data: a supervisor
goes board → payments and refunds → the paying customer's history → board by the links under
each header (no typed addresses); the refunds page names customer, advisor, items and order,
and a refund of everything left is asked for first (cancel refunds nothing); each role sees
only the pages it may open; both languages, phone width, axe-clean."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Page, expect
from sqlalchemy import select

from livedesk.demo import data
from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.kit.db import Database
from livedesk.models import OrderChannel, PaymentRefund, Role, ShopOrder, Shopper
from livedesk.settings import Settings
from tests.conftest import SocketClient
from tests.e2e.conftest import axe_violations, screenshot

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SUPERVISOR = next(s for s in data.STAFF if s.role is Role.SUPERVISOR)
ADMIN = next(s for s in data.STAFF if s.role is Role.ADMIN)
ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")
SERUM = data.PRODUCTS_BY_SKU["HB-SK-001"]
TOTAL = 2 * SERUM.price
NAV_EN = ["Board", "Customers", "Payments and refunds"]


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(await screenshot(page, name), SCREENSHOTS / f"{name}.png")


async def assert_axe_clean(page: Page) -> None:
    violations = await axe_violations(page)
    assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]


async def ready(page: Page) -> None:
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")


async def sign_in(page: Page, email: str, *, email_field: str = "#signin-email") -> None:
    await ready(page)
    await page.fill(email_field, email)
    await page.fill("#signin-password" if email_field == "#signin-email" else "#password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")


def yen(amount: int) -> str:
    return f"¥{amount:,}"


async def paid_in_a_call(server: str, settings: Settings) -> tuple[str, str, str]:
    """A real consultation (real sockets) in which the demo advisor sells two serums and the
    shopper, "Aiko Tanaka", pays with the sandbox: (shopper id, request id, order number)."""
    opened: list[SocketClient] = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as advisor:
        login = await advisor.post(
            f"{server}/api/v1/auth/login", json={"email": ADVISOR.email, "password": DEMO_PASSWORD}
        )
        assert login.status == 200, await login.text()
        csrf = {"X-CSRF-Token": (await login.json())["csrf_token"]}
        console = SocketClient("/staff")
        await console.connect(
            server, headers={"Cookie": f"livedesk_session={login.cookies['livedesk_session'].value}"}
        )
        opened.append(console)
        await console.wait_for("presence.changed", lambda p: p["status"] == "available")
        async with aiohttp.ClientSession() as http:
            visitor = await (await http.post(f"{server}/api/v1/visitors", json={})).json()
            shopper = SocketClient("/shopper")
            await shopper.connect(server, auth={"token": visitor["token"]})
            opened.append(shopper)
            consultation = await shopper.ok("queue.join", {"kind": "video"})
            await console.wait_for("offer.new")
            await console.ok("offer.accept", {"consultation_id": consultation["id"]})
            sent = await advisor.post(
                f"{server}/api/v1/consultations/{consultation['id']}/payment-requests",
                json={"client_key": uuid.uuid4().hex, "lines": [{"sku": SERUM.sku, "quantity": 2}]},
                headers=csrf,
            )
            assert sent.status == 201, await sent.text()
            request_id = (await sent.json())["id"]
            paid = await http.post(
                f"{server}/api/v1/payment-requests/{request_id}/sandbox",
                json={"action": "pay"},
                headers={"Authorization": f"Bearer {visitor['token']}"},
            )
            assert paid.status == 200, await paid.text()
            number = (await paid.json())["order_number"]
    for sock in opened:
        await sock.close()
    db = Database(settings.effective_database_url)
    try:
        async with db.transaction() as session:
            shopper_row = await session.get(Shopper, uuid.UUID(visitor["shopper_id"]))
            assert shopper_row is not None
            shopper_row.display_name = "Aiko Tanaka"
            shopper_row.email = "aiko.tanaka@example.jp"
    finally:
        await db.dispose()
    return visitor["shopper_id"], request_id, number


def nav_link(page: Page, name: str) -> Any:
    return page.locator("#staff-nav").get_by_role("link", name=name, exact=True)


async def expect_nav(page: Page, names: list[str]) -> None:
    """The staff navigation shows exactly these links (waiting for a re-render)."""
    nav = page.get_by_role("navigation", name=re.compile("Staff pages|スタッフ用の画面"))
    await expect(nav).to_be_visible()
    await expect(nav.get_by_role("link")).to_have_text(names)


async def refunds_of(settings: Settings) -> list[int]:
    db = Database(settings.effective_database_url)
    try:
        async with db.read() as session:
            return list((await session.scalars(select(PaymentRefund.amount_minor))).all())
    finally:
        await db.dispose()


async def test_a_supervisor_moves_between_board_refunds_and_customers(
    server: str, new_page: Any, e2e_settings: Settings
) -> None:
    shopper_id, request_id, number = await paid_in_a_call(server, e2e_settings)
    db = Database(e2e_settings.effective_database_url)
    try:
        async with db.read() as session:
            order = (
                await session.scalars(select(ShopOrder).where(ShopOrder.channel == OrderChannel.CALL))
            ).one()
            assert order.external_id == number
    finally:
        await db.dispose()

    page: Page = await new_page(server + "/supervisor/")
    await sign_in(page, SUPERVISOR.email)
    await expect(page.locator("#board")).to_be_visible()
    await expect_nav(page, NAV_EN)
    await expect(nav_link(page, "Board")).to_have_attribute("aria-current", "page")
    await expect(nav_link(page, "Administration")).to_have_count(0)
    await assert_axe_clean(page)

    # Board → Payments and refunds.
    await nav_link(page, "Payments and refunds").click()
    await page.wait_for_url(re.compile(r"/payments/refunds\.html$"))
    await ready(page)
    row = page.locator(f'#ref-rows tr[data-request-id="{request_id}"]')
    await expect(row).to_have_attribute("data-status", "paid")
    await expect(nav_link(page, "Payments and refunds")).to_have_attribute("aria-current", "page")
    await expect(row.get_by_role("link", name="Aiko Tanaka")).to_be_visible()
    await expect(row).to_contain_text("aiko.tanaka@example.jp")
    await expect(row).to_contain_text(ADVISOR.display_name)
    await expect(row).to_contain_text(f"{SERUM.name_en} × 2")
    await expect(row.locator(".ref-order")).to_have_text(number)
    await expect(row).to_contain_text(f"Left to refund: {yen(TOTAL)}")
    await assert_axe_clean(page)
    await page.evaluate("window.scrollTo(0, 0)")
    await shot(page, "payments-refunds-desktop")

    # An empty amount means "everything left": asked first; cancelling refunds nothing.
    await row.get_by_role("button", name="Refund").click()
    dialog = page.get_by_role("dialog", name="Refund everything that is left?")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text(f"{yen(TOTAL)} goes back to Aiko Tanaka for order {number}.")
    await assert_axe_clean(page)
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(row).to_have_attribute("data-status", "paid")
    assert await refunds_of(e2e_settings) == []

    # A part is refunded at once, without asking.
    await row.get_by_label(f"Amount to refund for the payment of {yen(TOTAL)}").fill("1000")
    await row.get_by_role("button", name="Refund").click()
    await expect(page.locator("#ref-status")).to_have_text("Refunded ¥1,000.")
    await expect(dialog).to_be_hidden()
    await expect(row).to_have_attribute("data-status", "partially_refunded")
    assert await refunds_of(e2e_settings) == [1000]

    # Typing exactly what is left is a full refund too: asked, then done.
    await row.get_by_label(f"Amount to refund for the payment of {yen(TOTAL)}").fill(str(TOTAL - 1000))
    await row.get_by_role("button", name="Refund").click()
    await expect(dialog).to_contain_text(f"{yen(TOTAL - 1000)} goes back to Aiko Tanaka")
    await dialog.get_by_role("button", name=f"Refund {yen(TOTAL - 1000)}").click()
    await expect(page.locator("#ref-status")).to_have_text(f"Refunded {yen(TOTAL - 1000)}.")
    await expect(row).to_have_attribute("data-status", "refunded")
    assert sorted(await refunds_of(e2e_settings)) == [1000, TOTAL - 1000]

    # Japanese, then a phone.
    await page.locator("[data-lang-switch] button[data-lang=ja]").click()
    await expect_nav(page, ["ボード", "顧客", "お支払いと返金"])
    await expect(page.locator("#ref-table thead")).to_contain_text("お客様")
    await expect(row).to_contain_text(f"{SERUM.name_ja} × 2")
    await shot(page, "payments-refunds-desktop-ja")
    await page.set_viewport_size({"width": 390, "height": 844})
    await expect(row.locator("td").first).to_be_visible()
    await assert_axe_clean(page)
    await shot(page, "payments-refunds-phone-ja")
    await page.locator("[data-lang-switch] button[data-lang=en]").click()
    await shot(page, "payments-refunds-phone")
    await page.set_viewport_size({"width": 1280, "height": 800})

    # Refunds → the customer who paid, with the purchase on her timeline.
    await row.get_by_role("link", name="Aiko Tanaka").click()
    await page.wait_for_url(re.compile(rf"/history/\?shopper={shopper_id}$"))
    await ready(page)
    await expect(page.locator("#customer-title")).to_have_text("Aiko Tanaka")
    await expect(nav_link(page, "Customers")).to_have_attribute("aria-current", "page")
    purchase = page.locator('.timeline li[data-kind="shop.order"]').first
    await expect(purchase).to_contain_text(number)
    await assert_axe_clean(page)
    await shot(page, "history-nav-desktop")

    # Customers → back to the board.
    await nav_link(page, "Board").click()
    await page.wait_for_url(re.compile(r"/supervisor/$"))
    await expect(page.locator("#board")).to_be_visible()


async def test_each_role_sees_the_pages_it_may_open(server: str, new_page: Any) -> None:
    admin: Page = await new_page(server + "/admin/")
    await sign_in(admin, ADMIN.email)
    await expect(admin.locator("#admin-panel")).to_be_visible()
    await expect_nav(admin, [*NAV_EN, "Administration"])
    await expect(nav_link(admin, "Administration")).to_have_attribute("aria-current", "page")
    await assert_axe_clean(admin)
    await nav_link(admin, "Payments and refunds").click()
    await ready(admin)
    await expect(admin.locator("#ref-panel")).to_be_visible()
    await expect(admin.locator("#ref-who")).to_contain_text("admin")

    # An advisor: the console and the customers, nothing else — and the refunds page, typed
    # in, says it is not hers.
    advisor: Page = await new_page(server + "/staff/")
    await sign_in(advisor, ADVISOR.email, email_field="#email")
    await expect(advisor.locator("#presence-state")).to_be_visible()
    await advisor.goto(server + "/history/")
    await ready(advisor)
    await expect_nav(advisor, ["Console", "Customers"])
    await advisor.goto(server + "/payments/refunds.html")
    await ready(advisor)
    await expect(advisor.locator("#ref-denied")).to_be_visible()
    await expect_nav(advisor, ["Console", "Customers"])

    # Signed out: no staff links at all.
    stranger: Page = await new_page(server + "/supervisor/")
    await ready(stranger)
    await expect(stranger.locator("#signin-panel")).to_be_visible()
    await expect(stranger.locator("#staff-nav")).to_be_hidden()
