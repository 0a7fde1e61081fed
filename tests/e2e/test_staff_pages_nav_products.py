"""Issue 19, what was left of items 5, 7 and 13, in a real browser with the demo data.

- Navigation: every staff page — the advisor console, the /staff/ page of supervisors and
  admins, and each admin sub-page (catalogue, consultation types, integrations, surveys) —
  shows exactly the links its reader's role may open; a link the role may not open is absent,
  and the server refuses it anyway. The console keeps its 1366×768 workspace whole: the links
  sit in its header row and open in a new tab (leaving the console would drop its call).
- Product search: an admin adds a product in the catalogue page; the advisor finds it in the
  console by English or Japanese name, with the keyboard alone, pages through the catalogue
  ("More products…"), and sends it as a card the shopper receives in her language.
- A purchase paid in a consultation is labelled so in the customer panel (not as a web shop
  order), in both languages; opened, it shows the consultation; a supervisor's customer page
  links it to its payment on the payments page, where the row is marked.
- Screenshots of each page in English and Japanese at desktop and phone width (390×844), each
  page axe-clean.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from playwright.async_api import Locator, Page, ViewportSize, expect

from livedesk.demo import data
from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.models import Role
from tests.e2e.conftest import axe_violations, screenshot
from tests.e2e.test_advisor_console import (
    ADVISOR,
    demo_shoppers,
    e2e_settings,
    offer_card,
    shopper_socket,
    switch_language,
    workspace,
)
from tests.e2e.test_advisor_console import sign_in as console_sign_in
from tests.e2e.test_staff_navigation import paid_in_a_call
from tests.e2e.test_workspace_layout import assert_in_window, workspace_parts

__all__ = ["e2e_settings"]  # the console's settings (a shop signing secret, a long offer timeout)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SUPERVISOR = next(s for s in data.STAFF if s.role is Role.SUPERVISOR)
ADMIN = next(s for s in data.STAFF if s.role is Role.ADMIN)
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
ALL_LINKS = ["Board", "Customers", "Payments and refunds", "Administration"]
ADMIN_PAGES = {
    "catalogue": ("/admin/catalogue.html", "#cat-panel", "#cat-denied"),
    "consultation-types": ("/admin/consultation-types.html", "#ct-panel", "#ct-denied"),
    "integrations": ("/admin/integrations.html", "#panel", "#denied"),
    "surveys": ("/admin/surveys.html", "#sv-panel", "#sv-denied"),
}
NEW_PRODUCT = {"sku": "HB-BA-777", "name": "Yuzu Bath Salt", "name_ja": "柚子のバスソルト", "price": "2200"}


async def ready(page: Page) -> None:
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")


async def assert_axe_clean(page: Page, what: str) -> None:
    violations = await axe_violations(page)
    assert violations == [], (what, [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in violations])


async def sign_in_at(page: Page, email: str, *, staff_form: bool = False) -> None:
    """Sign in with the page's own form (/staff/ has #email, the other pages #signin-email)."""
    await ready(page)
    await page.fill("#email" if staff_form else "#signin-email", email)
    await page.fill("#password" if staff_form else "#signin-password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")


def nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name=re.compile("^(Staff pages|スタッフ用の画面)$"))


async def expect_links(page: Page, names: Sequence[str | re.Pattern[str]]) -> None:
    """The staff navigation shows exactly these links, by accessible name, in this order."""
    links = nav(page).get_by_role("link")
    await expect(nav(page)).to_be_visible()
    await expect(links).to_have_count(len(names))
    for index, name in enumerate(names):
        await expect(links.nth(index)).to_have_accessible_name(name)


async def shoot(page: Page, name: str, *, desktop: ViewportSize = DESKTOP, before: Any = None) -> None:
    """<name>-desktop, -desktop-ja, -phone, -phone-ja in docs/screenshots, each axe-checked;
    ``before`` (async, given the page) runs after each change of size or language."""
    for size, suffix in ((desktop, "desktop"), (PHONE, "phone")):
        await page.set_viewport_size(size)
        for lang in ("en", "ja"):
            await switch_language(page, lang)
            if before:
                await before(page)
            await assert_axe_clean(page, f"{name} {suffix} {lang}")
            shot = f"{name}-{suffix}" + ("-ja" if lang == "ja" else "")
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(await screenshot(page, shot), SCREENSHOTS / f"{shot}.png")
    await switch_language(page, "en")
    await page.set_viewport_size(desktop)


async def test_every_staff_page_links_what_the_role_may_open(server: str, new_page: Any) -> None:
    # An advisor's console: the console and Customers, in the header row; Customers opens a new
    # tab; nothing else is offered, and the server refuses what is not hers.
    advisor: Page = await new_page(server + "/staff/", width=1366, height=768)
    await console_sign_in(advisor)
    await expect_links(advisor, ["Console", re.compile(r"^Customers\s+\(opens in a new tab\)\s*$")])
    console_link = nav(advisor).get_by_role("link", name="Console")
    await expect(console_link).to_have_attribute("aria-current", "page")
    customers = nav(advisor).get_by_role("link", name=re.compile("^Customers"))
    await expect(customers).to_have_attribute("target", "_blank")
    header, link_box = await advisor.locator(".site-header").bounding_box(), await customers.bounding_box()
    assert header is not None
    assert link_box is not None
    assert link_box["y"] + link_box["height"] <= header["y"] + header["height"]
    for refused in ("/api/v1/payment-requests", "/api/v1/staff", "/api/v1/products?include_inactive=true"):
        answer = await advisor.request.get(server + refused)
        assert answer.status == 403, (refused, answer.status)
    await assert_axe_clean(advisor, "console nav")
    await switch_language(advisor, "ja")
    await expect_links(advisor, ["コンソール", re.compile(r"^顧客\s*（新しいタブで開きます）\s*$")])
    await switch_language(advisor, "en")

    # The admin sub-pages, typed in by the advisor: her two links, and the page says no.
    for path, _panel, denied in ADMIN_PAGES.values():
        await advisor.goto(server + path)
        await ready(advisor)
        await expect(advisor.locator(denied)).to_be_visible()
        await expect_links(advisor, ["Console", "Customers"])

    # A supervisor on /staff/ (the list of workspaces) and on an admin sub-page.
    supervisor: Page = await new_page(server + "/staff/")
    await sign_in_at(supervisor, SUPERVISOR.email, staff_form=True)
    await expect(supervisor.locator("#signed-in-panel")).to_be_visible()
    await expect_links(supervisor, ALL_LINKS[:3])  # no console: /staff/ opens it for advisors only
    await shoot(supervisor, "staff-signed-in")
    await supervisor.goto(server + "/admin/catalogue.html")
    await ready(supervisor)
    await expect(supervisor.locator("#cat-denied")).to_be_visible()
    await expect_links(supervisor, ALL_LINKS[:3])

    # An admin: all five links on every admin sub-page, Administration marked as the section.
    admin: Page = await new_page(server + "/admin/")
    await sign_in_at(admin, ADMIN.email)
    await expect(admin.locator("#admin-panel")).to_be_visible()
    for name, (path, panel, _denied) in ADMIN_PAGES.items():
        await admin.goto(server + path)
        await ready(admin)
        await expect(admin.locator(panel)).to_be_visible()
        await expect_links(admin, ALL_LINKS)
        await expect(nav(admin).get_by_role("link", name="Administration")).to_have_attribute(
            "aria-current", "true"
        )
        await shoot(admin, f"admin-{name}")
    # The links lead where they say.
    await nav(admin).get_by_role("link", name="Payments and refunds").click()
    await admin.wait_for_url(re.compile(r"/payments/refunds\.html$"))
    await ready(admin)
    await expect(admin.locator("#ref-panel")).to_be_visible()


async def test_an_admin_added_product_is_found_by_search_and_sent_as_a_card(
    server: str, new_page: Any
) -> None:
    # The admin adds a product with the catalogue page's form.
    admin: Page = await new_page(server + "/admin/")
    await sign_in_at(admin, ADMIN.email)
    await expect(admin.locator("#admin-panel")).to_be_visible()
    await admin.goto(server + "/admin/catalogue.html")
    await ready(admin)
    await admin.fill("#cat-sku", NEW_PRODUCT["sku"])
    await admin.fill("#cat-name", NEW_PRODUCT["name"])
    await admin.fill("#cat-name-ja", NEW_PRODUCT["name_ja"])
    await admin.fill("#cat-price", NEW_PRODUCT["price"])
    await admin.click("#cat-save")
    await expect(admin.locator(f'#cat-rows tr[data-sku="{NEW_PRODUCT["sku"]}"]')).to_be_visible()

    # A Japanese-speaking shopper chats with the advisor.
    shopper = demo_shoppers()[0]
    page: Page = await new_page(server + "/staff/", width=1366, height=768)
    await console_sign_in(page)
    sock = await shopper_socket(server, shopper)
    try:
        cid = (await sock.ok("queue.join", {"kind": "chat", "language": "ja"}))["id"]
        await offer_card(page, cid).get_by_role("button", name="Accept").click()
        ws = workspace(page, cid)
        await expect(ws).to_be_visible()
        await expect(ws.locator(".timeline .tl-item").first).to_be_visible()
        search = ws.get_by_role("combobox", name="Product")
        listbox = ws.get_by_role("listbox", name="Products found")

        # The whole catalogue, paged: 20, then "More products…" by keyboard reads the rest.
        await search.focus()
        await search.press("ArrowDown")
        await expect(listbox).to_be_visible()
        options = listbox.get_by_role("option")
        await expect(options).to_have_count(21)
        await expect(options.last).to_have_text("More products…")
        await search.press("ArrowUp")  # from nothing chosen, up goes to the last option
        last_id = await options.last.get_attribute("id")
        assert last_id
        await expect(search).to_have_attribute("aria-activedescendant", last_id)
        await search.press("Enter")
        await expect(options).to_have_count(len(data.PRODUCTS_BY_SKU) + 1)  # 21 demo + the new one
        await expect(options.filter(has_text=NEW_PRODUCT["sku"])).to_have_count(1)
        await search.press("Escape")
        await expect(listbox).to_be_hidden()

        # By its Japanese name, then by part of its English name (either case), keyboard only.
        await search.fill("柚子のバス")
        await expect(listbox).to_have_attribute("data-query", "柚子のバス")
        await expect(options).to_have_count(1)
        await expect(options.first).to_contain_text(NEW_PRODUCT["name"])
        await search.fill("BATH s")
        await expect(listbox).to_have_attribute("data-query", "BATH s")
        await expect(options).to_have_count(1)
        status = ws.locator("[data-part=product-status]")
        await expect(status).to_have_text(re.compile(r"^Products found: 1\."))
        await search.press("ArrowDown")
        await expect(options.first).to_have_attribute("aria-selected", "true")
        await assert_axe_clean(page, "product search open")
        await expect(listbox).to_be_visible()
        await page.screenshot(path=str(SCREENSHOTS / "console-product-search-1366.png"))
        await search.press("Enter")
        await expect(listbox).to_be_hidden()
        await expect(search).to_have_value("Yuzu Bath Salt — ¥2,200")
        await search.press("Tab")
        await expect(ws.get_by_role("button", name="Send product card")).to_be_focused()
        await page.keyboard.press("Enter")
        card = await sock.wait_for("chat.message", lambda m: m["kind"] == "product")
        assert card["data"]["sku"] == NEW_PRODUCT["sku"]
        assert card["data"]["name"] == NEW_PRODUCT["name_ja"]  # the shopper's language
        assert card["data"]["price_minor"] == 2200
        await expect(ws.locator(".msg-mine .product-card")).to_contain_text("¥2,200")
        await expect(search).to_have_value("")

        # Nothing found is said; the workspace still fits the window with the list open.
        await search.fill("no-such-thing")
        await expect(listbox).to_have_attribute("data-query", "no-such-thing")
        await expect(options).to_have_text(["No product matches “no-such-thing”."])
        await assert_in_window(page, **(await workspace_parts_without_call(ws)))
        await search.press("Escape")
        await search.press("Escape")
        await expect(search).to_have_value("")

        # In Japanese: the same search, its words in Japanese.
        await switch_language(page, "ja")
        search = ws.get_by_role("combobox", name="商品")
        listbox = ws.get_by_role("listbox", name="見つかった商品")
        options = listbox.get_by_role("option")
        await search.fill("バスソルト")
        await expect(listbox).to_have_attribute("data-query", "バスソルト")
        await expect(options).to_have_count(1)
        await expect(options.first).to_contain_text("柚子のバスソルト")
        await assert_axe_clean(page, "product search ja")
        await page.screenshot(path=str(SCREENSHOTS / "console-product-search-1366-ja.png"))
        await search.press("Escape")

        # On a phone (one column): the list opens over the chat, nothing wider than the phone.
        await page.set_viewport_size(PHONE)
        for lang, query, label in (("ja", "バスソルト", "商品"), ("en", "bath", "Product")):
            await switch_language(page, lang)
            search = ws.get_by_role("combobox", name=label)
            await search.scroll_into_view_if_needed()
            await search.fill(query)
            await expect(ws.locator("[data-part=product-list]")).to_have_attribute("data-query", query)
            await expect(ws.locator("[data-part=product-list] [role=option]")).to_have_count(1)
            assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            await assert_axe_clean(page, f"product search phone {lang}")
            suffix = "-ja" if lang == "ja" else ""
            await page.screenshot(path=str(SCREENSHOTS / f"console-product-search-phone{suffix}.png"))
            await search.press("Escape")
    finally:
        await sock.close()


async def workspace_parts_without_call(ws: Locator) -> dict[str, Locator]:
    parts = await workspace_parts(ws)
    return {k: v for k, v in parts.items() if k not in ("video", "call controls")}


async def test_a_purchase_in_a_consultation_is_labelled_and_linked(
    server: str, new_page: Any, e2e_settings: Any
) -> None:
    shopper_id, request_id, number = await paid_in_a_call(server, e2e_settings)

    # The advisor's console brings the consultation back; its customer panel names the
    # purchase as made in a consultation, in both languages.
    page: Page = await new_page(server + "/staff/", width=1366, height=768)
    await sign_in_at(page, ADVISOR.email, staff_form=True)  # Busy, in that consultation
    ws = page.locator(".workspace").first
    await expect(ws).to_be_visible()
    latest = ws.locator(".cust-purchases .order-title").first
    await expect(latest).to_have_text(f"Bought in a consultation: order {number}")
    entry = ws.locator('.timeline li[data-kind="shop.order"]').first
    await expect(entry.locator(".order-title")).to_have_text(f"Bought in a consultation: order {number}")
    await expect(ws).not_to_contain_text("Web shop order")
    # An advisor may not open the payments page: no link to it.
    await expect(entry.get_by_role("link", name="Payment and refunds of this order")).to_have_count(0)
    await switch_language(page, "ja")
    await expect(latest).to_have_text(f"ご相談中のご購入：注文 {number}")
    await expect(ws).not_to_contain_text("オンラインショップ")
    await switch_language(page, "en")
    # Opened, the purchase shows the consultation it was bought in.
    await entry.get_by_role("button", name=re.compile("^Open")).click()
    dialog = page.locator("dialog.history-detail")
    await expect(dialog).to_contain_text(f"Bought in a consultation: order {number}")
    await expect(dialog).to_contain_text(ADVISOR.display_name)
    await assert_axe_clean(page, "purchase opened")
    await dialog.get_by_role("button", name="Close").click()

    # A supervisor's customer page links the purchase to its payment; the payments page marks it.
    supervisor: Page = await new_page(server + "/supervisor/")
    await sign_in_at(supervisor, SUPERVISOR.email)
    await expect(supervisor.locator("#board")).to_be_visible()
    await supervisor.goto(f"{server}/history/?shopper={shopper_id}")
    await ready(supervisor)
    purchase = supervisor.locator('.timeline li[data-kind="shop.order"]').first
    await expect(purchase.locator(".order-title")).to_have_text(f"Bought in a consultation: order {number}")

    async def purchase_in_view(p: Page) -> None:
        await purchase.scroll_into_view_if_needed()

    await shoot(supervisor, "history-purchase", before=purchase_in_view)
    await purchase.get_by_role("link", name="Payment and refunds of this order").click()
    await supervisor.wait_for_url(re.compile(rf"/payments/refunds\.html\?request={request_id}$"))
    await ready(supervisor)
    row = supervisor.locator(f'#ref-rows tr[data-request-id="{request_id}"]')
    await expect(row).to_have_attribute("aria-current", "true")
    await expect(row).to_be_focused()
    await expect(row.locator(".ref-order")).to_have_text(number)
    await shoot(supervisor, "payments-refunds-target")
