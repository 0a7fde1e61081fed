"""The booking pages in a real browser (Chromium) against the demo, with the demo mail outbox
on (no SMTP): a shopper in London books a skin check with a nominated Tokyo advisor — type →
advisor → day and time in their own zone → contact → "check your mail" — opens the mail in
/demo/mail, follows its confirm link, confirms, and then uses the confirmed booking's links:
the join page counts down, the manage page moves and cancels it. The links handed out before
the confirmation stop working. The same in Japanese at phone width; a shop customer signed in
through the widget is confirmed at once. Accessibility (axe) on every step; the screenshots go
to docs/screenshots/."""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect
from pydantic import SecretStr
from sqlalchemy import select

from livedesk.app import create_app
from livedesk.demo.seed import seed_demo
from livedesk.identity import sign_shop_customer_id
from livedesk.kit.db import Database
from livedesk.kit.migrate import upgrade
from livedesk.models import Booking, BookingStatus, IdentityKind, ShopperIdentity
from livedesk.settings import Settings
from tests.e2e.conftest import axe_violations, screenshot

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
SHOP_SECRET = "e2e-booking-shop-secret"


@pytest.fixture
def port() -> int:
    """The server's port, known before the app is built: the mails' links name it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def e2e_settings(e2e_settings: Settings, port: int) -> Settings:
    """The demo's way: no SMTP server, so mails wait in the outbox at /demo/mail."""
    return e2e_settings.model_copy(
        update={
            "mail_outbox": True,
            "public_url": f"http://127.0.0.1:{port}",
            "booking_job_seconds": 0.5,
            "shop_signing_secret": SecretStr(SHOP_SECRET),
        }
    )


@pytest.fixture
async def server(e2e_settings: Settings, port: int) -> AsyncIterator[str]:
    """The conftest's server, on the port the mails' links name."""
    await upgrade(e2e_settings.effective_database_url)
    db = Database(e2e_settings.effective_database_url)
    try:
        await seed_demo(db)
    finally:
        await db.dispose()
    app: web.Application = create_app(e2e_settings)
    test_server = TestServer(app, host="127.0.0.1", port=port)
    await test_server.start_server()
    try:
        yield e2e_settings.effective_public_url
    finally:
        await test_server.close()


async def shot(page: Page, name: str) -> None:
    path = await screenshot(page, name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / path.name)


@pytest.fixture
async def london_page(browser: Browser) -> AsyncIterator[Any]:
    """A page whose browser lives in London (its time zone and English)."""
    contexts = []

    async def open_page(url: str, *, width: int = 1280, height: int = 860, locale: str = "en-GB") -> Page:
        context = await browser.new_context(
            viewport={"width": width, "height": height},
            locale=locale,
            timezone_id="Europe/London",
            bypass_csp=True,
        )
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: print(f"[pageerror] {error}"))
        await page.goto(url)
        return page

    yield open_page
    for context in contexts:
        await context.close()


async def no_violations(page: Page) -> None:
    violations = await axe_violations(page)
    assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]


async def open_outbox(page: Page) -> Page:
    """Follow the pending page's link to the demo outbox (it opens a new tab)."""
    async with page.context.expect_page() as opened:
        await page.locator("#pending-outbox").click()
    outbox = await opened.value
    await outbox.wait_for_load_state()
    return outbox


async def confirm_link_of(outbox: Page, address: str) -> Any:
    """The confirm link of the newest mail to ``address`` (the page polls until it is there)."""
    mail = outbox.locator(".outbox-mail", has_text=address).first
    await expect(mail).to_be_visible(timeout=15_000)
    return mail.locator('a[href*="/booking/?confirm="]')


async def booking_of(db: Database, address: str) -> Booking:
    async with db.read() as session:
        return (await session.scalars(select(Booking).where(Booking.contact_email == address))).one()


async def test_shopper_books_confirms_by_mail_then_joins_early_moves_and_cancels(
    server: str, london_page: Any, e2e_settings: Settings
) -> None:
    page = await london_page(f"{server}/booking/")
    await expect(page.locator("#type-title")).to_have_text("What would you like to talk about?")
    await expect(page.locator("#step")).to_have_text("Step 1 of 4")
    await no_violations(page)
    await shot(page, "booking-type-desktop")
    await page.get_by_role("button", name=re.compile("Skin check")).click()

    await expect(page.locator("#advisor-title")).to_be_focused()
    await expect(page.locator("[data-advisor=any]")).to_be_visible()
    # Only advisors with the skincare skill can take a skin check.
    await expect(page.get_by_role("button", name=re.compile("Sakura Tanaka"))).to_be_visible()
    await expect(page.get_by_role("button", name=re.compile("Ren Takahashi"))).to_have_count(0)
    await no_violations(page)
    await page.get_by_role("button", name=re.compile("Sakura Tanaka")).click()

    await expect(page.locator("#slot-zone")).to_have_text(
        "Times are shown in your time zone: United Kingdom Time"
    )
    first_slot = page.locator("button.slot").first
    await expect(first_slot).to_be_visible()
    await no_violations(page)
    await shot(page, "booking-slots-desktop")
    chosen = await first_slot.get_attribute("data-start")
    assert chosen is not None
    start = datetime.fromisoformat(chosen)
    # Sakura works 10:00–18:00 in Tokyo: shown to a Londoner as early morning (01:00–09:00).
    tokyo_hour = start.astimezone(ZoneInfo("Asia/Tokyo")).hour
    assert 10 <= tokyo_hour < 18
    assert await first_slot.inner_text() == start.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M")
    await first_slot.click()

    await expect(page.locator("#contact-title")).to_be_focused()
    await expect(page.locator("#contact-summary")).to_contain_text("Sakura Tanaka")
    # E-mail is required: a clear message on the field, nothing sent.
    await page.locator("#contact-submit").click()
    await expect(page.locator("#contact-email-error")).to_have_text(
        "Please enter your e-mail address; the confirmation goes there."
    )
    await expect(page.locator("#contact-email")).to_be_focused()
    # A name carrying a web address is refused by the server: said on the name field.
    await page.locator("#contact-name").fill("Emily see https://evil.example")
    await page.locator("#contact-email").fill("emily.brown@example.co.uk")
    await page.locator("#contact-submit").click()
    await expect(page.locator("#contact-name-error")).to_have_text(
        "Please enter just your name, without web addresses, < > or line breaks."
    )
    await expect(page.locator("#contact-name")).to_be_focused()
    await expect(page.locator("#contact-name")).to_have_attribute("aria-invalid", "true")
    await page.locator("#contact-name").fill("Emily Brown")
    await no_violations(page)
    await page.locator("#contact-submit").click()

    # Pending: the time is held while the mail is on its way.
    await expect(page.locator("#pending-title")).to_have_text("Check your mail")
    await expect(page.locator("#pending-title")).to_be_focused()
    await expect(page.locator("#pending-text")).to_contain_text(
        "We have sent a link to emily.brown@example.co.uk"
    )
    await expect(page.locator("#pending-text")).to_contain_text(re.compile(r"within (29|30) minutes"))
    await expect(page.locator("#pending-address")).to_have_text("emily.brown@example.co.uk")
    await expect(page.locator("#pending-summary")).to_contain_text("Waiting for your confirmation")
    await expect(page.locator("#pending-demo")).to_be_visible()
    await no_violations(page)
    await shot(page, "booking-pending-desktop")
    assert "/booking/?manage=" in page.url
    form_token = page.url.split("manage=", 1)[1]
    # A reload still shows the pending booking and its deadline (kept for this tab).
    await page.reload()
    await expect(page.locator("#pending-text")).to_contain_text(re.compile(r"within (29|30) minutes"))

    db = Database(e2e_settings.effective_database_url)
    try:
        booking = await booking_of(db, "emily.brown@example.co.uk")
        assert booking.status == BookingStatus.PENDING
        assert booking.starts_at == start
        assert booking.shopper_timezone == "Europe/London"
        assert booking.nominated is True

        # Not confirmed yet: the join page says what to do, and no call starts.
        early = await london_page(f"{server}/booking/?join={form_token}")
        await expect(early.locator("#error")).to_have_text(
            "This booking is not confirmed yet. "
            "Open the link in the “Please confirm your booking” mail first."
        )
        assert "/call/" not in early.url

        # The demo outbox, from the pending page's link: the mail with its confirm link.
        outbox = await open_outbox(page)
        await expect(outbox.locator("h1")).to_have_text("Demo mail outbox")
        await expect(outbox.locator(".outbox-notice")).to_contain_text("This is a demo.")
        link = await confirm_link_of(outbox, "emily.brown@example.co.uk")
        mail = outbox.locator(".outbox-mail").first
        await expect(mail.locator(".outbox-subject")).to_contain_text(
            "Please confirm your booking: Skin check"
        )
        await no_violations(outbox)
        await shot(outbox, "demo-mail-desktop")
        confirm_url = await link.get_attribute("href")
        assert confirm_url is not None
        assert confirm_url.startswith(f"{server}/booking/?confirm=")
        await link.click()

        # The confirm step: one press (a mail scanner opening the link confirms nothing).
        await expect(outbox.locator("#confirm-title")).to_have_text("Confirm your booking")
        await no_violations(outbox)
        assert (await booking_of(db, "emily.brown@example.co.uk")).status == BookingStatus.PENDING
        await outbox.locator("#confirm-button").click()
        await expect(outbox.locator("#done-title")).to_have_text("Your booking is confirmed")
        await expect(outbox.locator("#done-text")).to_contain_text("emily.brown@example.co.uk")
        await expect(outbox.locator("#done-summary")).to_contain_text("(United Kingdom Time)")
        await expect(outbox.locator("#done-summary")).to_contain_text("Confirmed")
        await expect(outbox.locator("#done-calendar")).to_be_visible()
        await no_violations(outbox)
        await shot(outbox, "booking-done-desktop")
        # The address now holds the NEW token: a reload opens the booking.
        assert "/booking/?manage=" in outbox.url
        token = outbox.url.split("manage=", 1)[1]
        assert token != form_token
        await outbox.reload()
        await expect(outbox.locator("#done-title")).to_have_text("Your booking")
        await expect(outbox.locator("#done-reschedule")).to_be_visible()
        assert (await booking_of(db, "emily.brown@example.co.uk")).status == BookingStatus.CONFIRMED

        # The booking form's link was replaced; the confirm link is single-use.
        await page.reload()
        await expect(page.locator("#error")).to_have_text(
            "This link was replaced when the booking was confirmed. "
            "Please use the links in the “Booking confirmed” mail."
        )
        again = await london_page(confirm_url)
        await again.locator("#confirm-button").click()
        await expect(again.locator("#error")).to_contain_text("This link has already been used")
        await expect(again.locator("#confirm-button")).to_be_hidden()

        # The confirmation mail followed, with the new links.
        await outbox.goto(f"{server}/demo/mail")
        confirmed_mail = outbox.locator(".outbox-mail", has_text="Booking confirmed")
        await expect(confirmed_mail).to_be_visible(timeout=15_000)
        await expect(confirmed_mail.locator(f'a[href="{server}/booking/?manage={token}"]')).to_be_visible()
        await expect(confirmed_mail).to_contain_text("invite.ics")

        # The join link before the time: a countdown, no call yet.
        join = await london_page(f"{server}/booking/?join={token}")
        await expect(join.locator("#join-countdown")).to_be_visible()
        await expect(join.locator("#countdown-value")).to_have_text(
            re.compile(r"^(\d+ days )?\d\d:\d\d:\d\d$")
        )
        await no_violations(join)
        await shot(join, "booking-join-desktop")
        assert "/call/" not in join.url

        # The manage link moves the booking (the token goes in the body) …
        await outbox.goto(f"{server}/booking/?manage={token}")
        await outbox.locator("#done-reschedule").click()
        later = outbox.locator("button.slot").nth(1)
        await expect(later).to_be_visible()
        moved_to = await later.get_attribute("data-start")
        assert moved_to is not None
        await later.click()
        await expect(outbox.locator("#done-title")).to_have_text("Your booking has been moved")
        moved = await booking_of(db, "emily.brown@example.co.uk")
        assert moved.starts_at == datetime.fromisoformat(moved_to)
        assert moved.sequence == 1

        # … and cancels it.
        await outbox.locator("#done-cancel").click()
        await expect(outbox.locator("#cancel-yes")).to_be_focused()
        await outbox.locator("#cancel-yes").click()
        await expect(outbox.locator("#done-title")).to_have_text("Your booking is cancelled")
        await expect(outbox.locator("#done-cancel")).to_be_hidden()
        await expect(outbox.locator("#done-again")).to_be_visible()
        assert (await booking_of(db, "emily.brown@example.co.uk")).status == BookingStatus.CANCELLED
    finally:
        await db.dispose()


async def test_japanese_at_phone_width_books_confirms_and_releases(server: str, london_page: Any) -> None:
    page = await london_page(f"{server}/booking/", width=390, height=844, locale="ja-JP")
    await expect(page.locator("#type-title")).to_have_text("ご相談内容をお選びください")
    await page.get_by_role("button", name=re.compile("メイクレッスン")).click()
    await page.locator("[data-advisor=any]").click()
    await expect(page.locator("button.slot").first).to_be_visible()
    await expect(page.locator("#slot-title")).to_have_text("日時をお選びください")
    await no_violations(page)
    await shot(page, "booking-slots-phone")
    await page.locator("#week-next").click()
    await expect(page.locator("#days")).not_to_have_attribute("aria-busy", "true")
    await expect(page.locator("button.slot").first).to_be_visible()
    # Back to the types: the make-up lesson's price and deposit in yen (no minor unit).
    await page.locator("#slot-back").click()
    await page.locator("#view-advisor [data-back=type]").click()
    price = re.compile("料金 [¥￥]3,300 · 予約金 [¥￥]1,000")
    await expect(page.locator("#type-list")).to_contain_text(price)

    # Book, wait for the mail, confirm: all in Japanese at phone width (a free type: the
    # make-up lesson's deposit is paid first, see test_booking_deposit.py).
    await page.get_by_role("button", name=re.compile("肌診断")).click()
    await page.locator("[data-advisor=any]").click()
    await page.locator("button.slot").first.click()
    await page.locator("#contact-name").fill("山田 花子")
    await page.locator("#contact-email").fill("hanako.yamada@example.jp")
    await page.locator("#contact-submit").click()
    await expect(page.locator("#pending-title")).to_have_text("メールをご確認ください")
    await expect(page.locator("#pending-text")).to_contain_text(
        "hanako.yamada@example.jp 宛にリンクをお送りしました"
    )
    await expect(page.locator("#pending-help")).to_contain_text("メールが届かない場合")
    await expect(page.locator("#pending-outbox")).to_have_text("デモ用メール送信箱を開く（新しいタブ）")
    await no_violations(page)
    await shot(page, "booking-pending-phone")
    outbox = await open_outbox(page)
    await expect(outbox.locator("h1")).to_have_text("デモ用メール送信箱")
    link = await confirm_link_of(outbox, "hanako.yamada@example.jp")
    await expect(outbox.locator(".outbox-mail").first).to_contain_text("ご予約の確認をお願いします")
    await no_violations(outbox)
    await shot(outbox, "demo-mail-phone")
    await link.click()
    await expect(outbox.locator("#confirm-title")).to_have_text("ご予約の確定")
    await no_violations(outbox)
    await outbox.locator("#confirm-button").click()
    await expect(outbox.locator("#done-title")).to_have_text("ご予約が確定しました")
    await expect(outbox.locator("#done-summary")).to_contain_text("確定")
    await no_violations(outbox)
    await shot(outbox, "booking-done-phone")

    # A second booking with a mistyped address: the pending page releases the time.
    second = await london_page(f"{server}/booking/", width=390, height=844, locale="ja-JP")
    await second.get_by_role("button", name=re.compile("肌診断")).click()
    await second.locator("[data-advisor=any]").click()
    await second.locator("button.slot").first.click()
    await second.locator("#contact-email").fill("hanako.yamda@example.jp")
    await second.locator("#contact-submit").click()
    await expect(second.locator("#pending-address")).to_have_text("hanako.yamda@example.jp")
    await second.locator("#pending-release").click()
    await expect(second.locator("#done-title")).to_have_text("ご予約をキャンセルしました")
    await expect(second.locator("#done-again")).to_be_visible()
    await no_violations(second)


async def test_widget_passes_the_signed_shop_customer_so_the_booking_is_confirmed_at_once(
    server: str, london_page: Any, e2e_settings: Settings
) -> None:
    signature = sign_shop_customer_id(SHOP_SECRET, "C-BOOK-7")
    widget = await london_page(f"{server}/widget/#scid=C-BOOK-7&ssig={signature}")
    await widget.locator("#booking-link").click()
    # In the fragment, which no server sees: never in a query string.
    href = await widget.locator("#booking-open").get_attribute("href")
    assert href is not None
    assert href.startswith("/booking/#scid=C-BOOK-7&ssig=")
    await widget.locator("#booking-open").click()
    await expect(widget.locator("#type-title")).to_be_visible()
    # The booking page took the signed id out of the address at once.
    assert widget.url == f"{server}/booking/"
    await widget.get_by_role("button", name=re.compile("Skin check")).click()
    await widget.locator("[data-advisor=any]").click()
    await widget.locator("button.slot").first.click()
    await widget.locator("#contact-email").fill("signed.customer@example.co.uk")
    await widget.locator("#contact-submit").click()
    await expect(widget.locator("#done-title")).to_have_text("Your booking is confirmed")
    db = Database(e2e_settings.effective_database_url)
    try:
        booking = await booking_of(db, "signed.customer@example.co.uk")
        assert booking.status == BookingStatus.CONFIRMED
        async with db.read() as session:
            owner = await session.scalar(
                select(ShopperIdentity.shopper_id).where(
                    ShopperIdentity.kind == IdentityKind.SHOP_CUSTOMER_ID, ShopperIdentity.value == "C-BOOK-7"
                )
            )
        # The booking is on the shop customer's own profile, not on a guest.
        assert owner == booking.shopper_id
    finally:
        await db.dispose()

    # Without a signed id the widget's link is the plain page.
    plain = await london_page(f"{server}/widget/#booking")
    await expect(plain.locator("#booking-open")).to_have_attribute("href", "/booking/")


async def test_a_forged_link_gets_a_clear_message(server: str, london_page: Any) -> None:
    page = await london_page(f"{server}/booking/?manage=not-a-real-token")
    await expect(page.locator("#error")).to_have_text(
        "This booking link is not valid. Please use the link from your e-mail."
    )
    await no_violations(page)
    forged = await london_page(f"{server}/booking/?confirm=not-a-real-token")
    await forged.locator("#confirm-button").click()
    await expect(forged.locator("#error")).to_have_text(
        "This confirmation link is not valid. Please check that it was copied whole, or book again."
    )
    await expect(forged.locator("#confirm-again")).to_be_visible()
    await no_violations(forged)


async def sign_in(page: Page, email: str) -> None:
    from livedesk.demo.seed import DEMO_PASSWORD

    await page.fill("#email", email)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")


async def test_advisor_sees_own_calendar_and_edits_availability(server: str, new_page: Any) -> None:
    page = await new_page(f"{server}/staff/")
    await sign_in(page, "sakura.tanaka@hanami.example")
    calendar = page.locator("#booking-calendar")
    await expect(calendar.locator("#calendar-heading")).to_have_text("My booking calendar")
    await expect(calendar).to_contain_text("Times in your time zone: Japan Standard Time")
    # The demo's upcoming bookings with Sakura (two to four days ahead) are this week.
    await expect(calendar.locator(".calendar-item").first).to_be_visible()
    # Cancel one of the week's bookings: asked first, then the shopper is told.
    first = calendar.locator(".calendar-item").first
    await first.locator("button").click()
    await calendar.locator(".calendar-cancel").click()
    await expect(calendar.locator("[data-confirm-yes]")).to_be_focused()
    await calendar.locator("[data-confirm-yes]").click()
    await expect(calendar.locator("[data-list-status]")).to_have_text(
        "Booking cancelled; the shopper has been told."
    )
    await expect(calendar.locator(".calendar-item.status-cancelled")).to_have_count(1)
    # The demo week has a lunch break (two stretches a day): both are shown.
    await expect(calendar.locator("[data-weekly-row]")).to_have_count(11)
    # Add Sunday 10:00–12:00 and a day off, then save.
    await calendar.get_by_role("button", name="Add hours").click()
    await expect(calendar.get_by_label("Sunday from")).to_have_value("10:00")
    await calendar.get_by_label("Sunday until").fill("12:00")
    await calendar.get_by_label("Date").fill("2031-01-02")
    await calendar.get_by_role("button", name="Add date").click()
    # Adding the exception kept what was typed above.
    await expect(calendar.get_by_label("Sunday until")).to_have_value("12:00")
    await expect(calendar.locator(".exception-list")).to_contain_text("2031-01-02 · Day off")
    await calendar.get_by_role("button", name="Save availability").click()
    await expect(calendar.locator("[data-status]")).to_have_text(
        "Saved. New bookings follow these hours; existing bookings stay."
    )
    violations = await axe_violations(page)
    assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]
    await calendar.locator("#calendar-heading").scroll_into_view_if_needed()
    await shot(page, "console-calendar-desktop")
    saved = await page.evaluate(
        """async () => {
            const me = await (await fetch('/api/v1/auth/me')).json();
            return await (await fetch(`/api/v1/advisors/${me.id}/availability`)).json();
        }"""
    )
    assert {"weekday": 6, "start": "10:00", "end": "12:00"} in saved["weekly"]
    # Nothing typed before was lost: both of Monday's stretches are still there.
    assert {"weekday": 0, "start": "10:00", "end": "13:00"} in saved["weekly"]
    assert {"weekday": 0, "start": "14:00", "end": "18:00"} in saved["weekly"]
    assert len(saved["weekly"]) == 12
    assert {"day": "2031-01-02", "kind": "off", "start": None, "end": None} in saved["exceptions"]


async def test_admin_adds_and_edits_a_consultation_type(server: str, new_page: Any) -> None:
    page = await new_page(f"{server}/admin/")
    await sign_in_admin(page)
    await page.get_by_role("link", name="Consultation types").click()
    await expect(page.locator("#ct-title")).to_have_text("Consultation types")
    await expect(page.locator("#ct-list")).to_contain_text("Skin check")
    await page.get_by_label("Name (Japanese)").fill("香水相談")
    await page.get_by_label("Name (English)").fill("Fragrance advice")
    await page.get_by_label("Length (minutes)").fill("20")
    await page.get_by_label("Required skills (comma-separated)").fill("fragrance")
    await page.get_by_label("Price (in the currency's minor unit; yen have none)").fill("2200")
    await page.locator("#ct-submit").click()
    # A price without a currency: the server's clear message, nothing saved.
    await expect(page.locator("#ct-error")).to_contain_text("currency")
    await page.get_by_label("Currency (e.g. JPY)").fill("JPY")
    await page.locator("#ct-submit").click()
    await expect(page.locator("#ct-notice")).to_have_text("Saved.")
    item = page.locator(".ct-item", has_text="Fragrance advice")
    await expect(item).to_contain_text("20 min")
    await expect(item).to_contain_text("2,200")
    await item.get_by_role("button").click()
    await expect(page.locator("#ct-form-title")).to_be_focused()
    await page.get_by_role("checkbox", name="Bookable").uncheck()
    await page.locator("#ct-submit").click()
    await expect(page.locator(".ct-item", has_text="Fragrance advice")).to_contain_text("not bookable")
    violations = await axe_violations(page)
    assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]
    await shot(page, "admin-consultation-types-desktop")
    # Not bookable any more: gone from the shopper's list.
    public = await page.evaluate("async () => (await (await fetch('/api/v1/booking/types')).json()).types")
    assert "香水相談" not in [t["name"] for t in public]


async def sign_in_admin(page: Page) -> None:
    from livedesk.demo.seed import DEMO_PASSWORD

    await page.fill("#signin-email", "naoko.kobayashi@hanami.example")
    await page.fill("#signin-password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#admin-title")).to_be_visible()


async def test_join_link_at_the_booked_time_opens_the_call_with_the_booked_advisor(
    server: str, new_page: Any, london_page: Any, e2e_settings: Settings
) -> None:
    from datetime import UTC, timedelta

    from livedesk.booking.tokens import BookingTokens
    from livedesk.demo.plan import demo_id
    from livedesk.models import Shopper, Staff

    console = await new_page(f"{server}/staff/")
    await sign_in(console, "sakura.tanaka@hanami.example")
    await expect(console.locator("#presence-state")).to_have_attribute("data-status", "available")
    # A booking that starts now (made earlier; written straight into the database).
    db = Database(e2e_settings.effective_database_url)
    try:
        async with db.transaction() as session:
            sakura = (
                await session.scalars(select(Staff).where(Staff.email == "sakura.tanaka@hanami.example"))
            ).one()
            shopper = (
                await session.scalars(select(Shopper).where(Shopper.email.is_not(None)).limit(1))
            ).one()
            start = datetime.now(UTC).replace(second=0, microsecond=0)
            booking = Booking(
                consultation_type_id=demo_id("consultation_type", "skin-check"),
                advisor_id=sakura.id,
                shopper_id=shopper.id,
                status=BookingStatus.CONFIRMED,
                starts_at=start,
                ends_at=start + timedelta(minutes=30),
                block_start=start,
                block_end=start + timedelta(minutes=40),
                nominated=True,
                shopper_timezone="Europe/London",
                locale="en",
                contact_name=shopper.display_name,
                contact_email=shopper.email or "",
                extra={},
            )
            session.add(booking)
        token = BookingTokens(e2e_settings.secret_key.get_secret_value()).issue(booking.id)
        page = await london_page(f"{server}/booking/?join={token}")
        # The join page hands over to the call page, as this booking's shopper.
        await page.wait_for_url(re.compile(r"/call/\?c="))
        consultation_id = page.url.split("c=", 1)[1]
        # The booked advisor gets the offer, marked as a booked call.
        card = console.locator(f'[data-consultation-id="{consultation_id}"]')
        await expect(card).to_be_visible(timeout=10_000)
        await expect(card).to_contain_text("Booked call")
        await card.get_by_role("button", name="Accept").click()
        async with db.read() as session:
            joined = await session.get(Booking, booking.id)
            assert joined is not None
            assert str(joined.consultation_id) == consultation_id
    finally:
        await db.dispose()


async def test_survey_step_before_the_contact_details(
    server: str, london_page: Any, e2e_settings: Settings
) -> None:
    from livedesk.demo.plan import demo_id
    from livedesk.demo.surveys import DEMO_SURVEY_ID
    from livedesk.surveys import service as surveys

    db = Database(e2e_settings.effective_database_url)
    try:
        # The admin shows the demo survey before skin checks (a free type: no payment step).
        async with db.transaction() as session:
            await surveys.set_assignment(
                session, str(demo_id("consultation_type", "skin-check")), DEMO_SURVEY_ID
            )
        page = await london_page(f"{server}/booking/")
        await page.get_by_role("button", name=re.compile("Skin check")).click()
        await page.locator("[data-advisor=any]").click()
        await page.locator("button.slot").first.click()
        await expect(page.locator("#survey-title")).to_be_focused()
        await expect(page.locator("#step")).to_have_text("Step 4 of 5")
        # Required answers missing: shown on the questions, not sent.
        await page.locator("#survey-next").click()
        await expect(page.locator("#view-survey .survey-invalid").first).to_be_visible()
        await page.get_by_role("radio", name="Make-up").check()
        await page.get_by_role("checkbox", name=re.compile("I agree")).check()
        await no_violations(page)
        await page.locator("#survey-next").click()
        await expect(page.locator("#contact-title")).to_be_focused()
        await expect(page.locator("#step")).to_have_text("Step 5 of 5")
        await page.locator("#contact-email").fill("survey.booker@example.co.uk")
        await page.locator("#contact-submit").click()
        await expect(page.locator("#view-pending")).to_be_visible()
        await expect(page.locator("#pending-title")).to_have_text("Check your mail")
        async with db.read() as session:
            booking = (
                await session.scalars(
                    select(Booking).where(Booking.contact_email == "survey.booker@example.co.uk")
                )
            ).one()
        assert booking.survey_response_id is not None
        assert booking.nominated is False
    finally:
        await db.dispose()
