"""Customer history in a real browser against the real app with the demo data: search a
demo shopper by the start of their e-mail and by their Latin name, their timeline with store
visits and orders, filter by kind, open an order in full, add a note, recommendations; the
admin integrations page (API key shown once, CSV import with progress and refused rows by
line, a webhook endpoint); both languages, axe-clean; screenshots for the README."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect
from pydantic import SecretStr

from livedesk.demo import data
from livedesk.demo.plan import build_plan, demo_anchor
from livedesk.kit.clock import utcnow
from livedesk.models import Role
from livedesk.settings import Settings
from tests.e2e.conftest import axe_violations, screenshot

SHOP_SECRET = "shop-secret-for-timeline-e2e"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ADMIN = next(s for s in data.STAFF if s.role is Role.ADMIN)
ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")
CSV = (
    "order_id,shop_customer_id,email,display_name,ordered_at,sku,name,quantity,unit_price_minor\n"
    "E2E-1,E2E-C1,e2e.buyer@example.com,E2E Buyer,2026-09-01T10:00:00+09:00,SERUM,Serum,1,4800\n"
    "E2E-2,E2E-C2,broken,Broken Row,2026-09-01T10:00:00+09:00,SERUM,Serum,1,4800\n"
)


@pytest.fixture
async def e2e_settings(e2e_settings: Settings) -> Settings:
    return e2e_settings.model_copy(update={"shop_signing_secret": SecretStr(SHOP_SECRET)})


async def keep_screenshot(page: Page, name: str) -> None:
    path = await screenshot(page, name)
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)


async def signed_in(new_page: Any, server: str, email: str, password: str, path: str, **options: Any) -> Page:
    page: Page = await new_page(server + "/staff/", **options)
    response = await page.request.post(
        server + "/api/v1/auth/login", data={"email": email, "password": password}
    )
    assert response.ok, await response.text()
    await page.goto(server + path)
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    return page


async def test_search_and_timeline(new_page: Any, server: str, demo_password: str) -> None:
    plan = build_plan(demo_anchor(utcnow()))
    # The demo shopper with the longest history (and a store visit: one of the first eight).
    shopper = max(plan.shoppers[:8], key=lambda s: len(s.orders) + len(s.consultations))
    page = await signed_in(new_page, server, ADVISOR.email, demo_password, "/history/")
    await expect(page.locator("#history-app")).to_be_visible()

    await page.locator("#search-input").fill("x")
    await page.locator("#search-form button[type=submit]").click()
    await expect(page.locator("#search-status")).to_have_text("Type at least two characters.")

    await page.locator("#search-input").fill(shopper.email.split("@")[0][:6])
    await page.locator("#search-form button[type=submit]").click()
    result = page.locator("#search-results button", has_text=shopper.display_name)
    await expect(result).to_be_visible()
    # The Latin spelling a shop sends finds the Japanese name too.
    await page.locator("#search-input").fill(shopper.name_latin.lower())
    await page.locator("#search-form button[type=submit]").click()
    await expect(result).to_be_visible()
    await result.click()

    await expect(page.locator("#customer-title")).to_have_text(shopper.display_name)
    await expect(page.locator("#customer-title")).to_be_focused()
    timeline = page.locator("#customer [data-part=timeline] > li")
    await expect(timeline.first).to_be_visible()
    await expect(page.locator("#customer .recommendations h5")).to_have_text("Recommendations")

    # Endless scroll: scrolling down loads the next pages without pressing "Load more".
    await expect(timeline).to_have_count(10)
    await page.locator("#customer [data-part=timeline] > li").last.scroll_into_view_if_needed()
    await page.wait_for_function(
        "document.querySelectorAll('#customer [data-part=timeline] > li').length > 10"
    )

    # "Add to payment request" outside a consultation hands the item to whoever listens.
    await page.evaluate(
        "window.__added = [];"
        "document.addEventListener('livedesk:add-to-payment', e => window.__added.push(e.detail))"
    )
    await page.locator("#customer .recommendations button").first.click()
    added = await page.evaluate("window.__added")
    assert len(added) == 1
    assert added[0]["quantity"] >= 1
    assert added[0]["sku"]

    # Filter to store visits: only they remain.
    await page.locator("#timeline-filter").select_option("store.visit")
    await expect(timeline.first).to_have_attribute("data-kind", "store.visit")
    kinds = await timeline.evaluate_all("items => items.map(i => i.dataset.kind)")
    assert set(kinds) == {"store.visit"}

    # Orders open in full: their lines in a table.
    await page.locator("#timeline-filter").select_option("shop.order")
    await expect(timeline.first).to_have_attribute("data-kind", "shop.order")
    await timeline.first.locator(".tl-open").click()
    dialog = page.locator("dialog.history-detail")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("table tbody tr").first).to_be_visible()
    assert await axe_violations(page) == []
    await dialog.locator("[data-part=close]").click()
    await expect(dialog).to_be_hidden()

    # A note lands on the timeline.
    await page.locator("#timeline-filter").select_option("")
    await page.locator(".note-form textarea").fill("Prefers evening calls")
    await page.locator(".note-form button[type=submit]").click()
    await expect(page.locator(".note-status")).to_have_text("Note added.")
    await expect(timeline.filter(has_text="Prefers evening calls").first).to_be_visible()

    assert await axe_violations(page) == []
    await page.evaluate("window.scrollTo(0, 0)")
    await keep_screenshot(page, "history-desktop")

    await page.locator("[data-lang=ja]").click()
    await expect(page.locator("#history-title")).to_have_text("顧客")
    await expect(page.locator("#customer .recommendations h5")).to_have_text("おすすめ")
    assert await axe_violations(page) == []

    # A phone: one column, still usable and clean.
    phone = await signed_in(
        new_page, server, ADVISOR.email, demo_password, f"/history/?q={shopper.email}", width=390, height=844
    )
    await phone.locator("#search-results button").first.click()
    await expect(phone.locator("#customer-title")).to_have_text(shopper.display_name)
    await expect(phone.locator("#customer [data-part=timeline] > li").first).to_be_visible()
    assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert await axe_violations(phone) == []
    await keep_screenshot(phone, "history-phone")


async def test_signed_out_and_privacy_buttons_by_role(new_page: Any, server: str, demo_password: str) -> None:
    page: Page = await new_page(server + "/history/")
    await expect(page.locator("#signed-out")).to_be_visible()
    shopper = build_plan(demo_anchor(utcnow())).shoppers[1]
    advisor = await signed_in(new_page, server, ADVISOR.email, demo_password, f"/history/?q={shopper.email}")
    await advisor.locator("#search-results button").first.click()
    await expect(advisor.locator("#customer-title")).to_have_text(shopper.display_name)
    await expect(advisor.locator("#privacy")).to_be_hidden()
    admin = await signed_in(new_page, server, ADMIN.email, demo_password, f"/history/?q={shopper.email}")
    await admin.locator("#search-results button").first.click()
    await expect(admin.locator("#export-link")).to_be_visible()
    await expect(admin.locator("#erase-open")).to_be_visible()
    await admin.locator("#erase-open").click()
    await expect(admin.locator("#erase-dialog")).to_be_visible()
    assert await axe_violations(admin) == []
    await admin.locator("#erase-confirm").click()
    await expect(admin.locator("#search-status")).to_have_text("The customer was anonymised.")


async def test_admin_integrations_page(
    new_page: Any, server: str, demo_password: str, tmp_path: Path
) -> None:
    page = await signed_in(new_page, server, ADMIN.email, demo_password, "/admin/integrations.html")
    await expect(page.locator("#panel")).to_be_visible()
    await page.locator("#integration-name").fill("Web shop")
    await page.locator("#integration-form button[type=submit]").click()
    row = page.locator("#integrations-table tbody tr", has_text="Web shop")
    await expect(row).to_be_visible()
    await row.locator("input").fill("production")
    await row.locator("button", has_text="New API key").click()
    await expect(page.locator("#new-key-value")).to_have_text(_starts_with_ldk())
    await expect(row.locator("code")).to_have_count(1)

    csv_file = tmp_path / "orders.csv"
    csv_file.write_text(CSV)
    await page.locator("#import-file").set_input_files(str(csv_file))
    await page.locator("#import-start").click()
    job = page.locator("#imports li", has_text="orders.csv")
    await expect(job).to_contain_text("Done")
    await expect(job).to_contain_text("2 of 2 rows · 1 imported · 1 refused")
    await job.locator("summary").click()
    await expect(job.locator(".import-errors li")).to_contain_text("Line 3:")

    # An internal address is refused with the server's reason (SSRF: docs/security.md).
    await page.locator("#hook-url").fill("http://127.0.0.1:9/hook")
    await page.locator("#type-booking-created").check()
    await page.locator("#hook-form button[type=submit]").click()
    await expect(page.locator("#notice")).to_contain_text("127.0.0.1")
    await page.locator("#hook-url").fill("https://hooks.hanami.example/livedesk")
    await page.locator("#hook-form button[type=submit]").click()
    await expect(page.locator("#new-secret-value")).to_contain_text("whsec_")
    await expect(page.locator("#hooks-table tbody tr", has_text="hooks.hanami.example")).to_contain_text(
        "booking.created"
    )

    assert await axe_violations(page) == []
    await keep_screenshot(page, "admin-integrations-desktop")
    await page.locator("[data-lang=ja]").click()
    await expect(page.locator("#title")).to_have_text("連携")
    assert await axe_violations(page) == []


def _starts_with_ldk() -> Any:
    import re

    return re.compile(r"^ldk_")


async def test_console_recommendation_goes_into_the_payment_request(
    new_page: Any, server: str, demo_password: str
) -> None:
    from livedesk.identity import sign_shop_customer_id
    from tests.conftest import SocketClient

    plan = build_plan(demo_anchor(utcnow()))
    shopper = max(plan.shoppers[:8], key=lambda s: len(s.orders) + len(s.consultations))
    page: Page = await new_page(server + "/staff/")
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    await page.fill("#email", ADVISOR.email)
    await page.fill("#password", demo_password)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#presence-state")).to_have_attribute("data-status", "available")

    async with aiohttp.ClientSession() as http:
        body = {
            "shop_customer_id": shopper.shop_customer_id,
            "shop_signature": sign_shop_customer_id(SHOP_SECRET, shopper.shop_customer_id),
        }
        async with http.post(f"{server}/api/v1/visitors", json=body) as response:
            visit = await response.json()
    sock = SocketClient("/shopper")
    await sock.connect(server, auth={"token": visit["token"]})
    try:
        joined = await sock.ok("queue.join", {"kind": "chat"})
        card = page.locator(f'.offer[data-consultation-id="{joined["id"]}"]')
        await expect(card).to_be_visible(timeout=10_000)
        await card.get_by_role("button", name="Accept").click()
        ws = page.locator(f'.workspace[data-consultation-id="{joined["id"]}"]')
        reco = ws.locator(".recommendations")
        await expect(reco.locator(".reco-item").first).to_be_visible()
        name = await reco.locator(".reco-name").first.text_content()
        await reco.locator(".reco-item button").first.click()
        await expect(reco.locator("[role=status]")).to_contain_text("added to the payment request")
        await expect(ws.locator(".payb")).to_contain_text(name or "")
        await expect(ws.locator(".tl-open").first).to_be_visible()
        assert await axe_violations(page) == []
    finally:
        await sock.close()
