"""The booking pages in a real browser (Chromium) against the demo: a shopper in London books
a skin check with a nominated Tokyo advisor — type → advisor → day and time in their own
zone → contact → confirmation — then the mailed links: the join page counts down, the
manage page cancels. Accessibility (axe) on every step, both languages, phone width; the
screenshots go to docs/screenshots/."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from livedesk.kit.db import Database
from livedesk.models import Booking, BookingStatus
from livedesk.settings import Settings
from tests.e2e.conftest import axe_violations, screenshot

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"


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


async def test_shopper_books_a_nominated_advisor_then_joins_early_and_cancels(
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

    await expect(page.locator("#slot-zone")).to_have_text("Times are shown in your time zone: Europe/London")
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
    await page.locator("#contact-name").fill("Emily Brown")
    await page.locator("#contact-email").fill("emily.brown@example.co.uk")
    await no_violations(page)
    await page.locator("#contact-submit").click()

    await expect(page.locator("#done-title")).to_have_text("Your booking is confirmed")
    await expect(page.locator("#done-text")).to_contain_text("emily.brown@example.co.uk")
    await expect(page.locator("#done-summary")).to_contain_text("(Europe/London)")
    await no_violations(page)
    await shot(page, "booking-done-desktop")
    manage_url = page.url
    assert "/booking/?manage=" in manage_url
    token = manage_url.split("manage=", 1)[1]

    db = Database(e2e_settings.effective_database_url)
    try:
        async with db.read() as session:
            booking = (
                await session.scalars(
                    select(Booking).where(Booking.contact_email == "emily.brown@example.co.uk")
                )
            ).one()
        assert booking.starts_at == start
        assert booking.shopper_timezone == "Europe/London"
        assert booking.nominated is True

        # The join link before the time: a countdown, no call yet.
        join = await london_page(f"{server}/booking/?join={token}")
        await expect(join.locator("#join-countdown")).to_be_visible()
        await expect(join.locator("#countdown-value")).to_have_text(
            re.compile(r"^(\d+ days )?\d\d:\d\d:\d\d$")
        )
        await no_violations(join)
        await shot(join, "booking-join-desktop")
        assert "/call/" not in join.url

        # The manage link cancels.
        await page.locator("#done-cancel").click()
        await expect(page.locator("#cancel-yes")).to_be_focused()
        await page.locator("#cancel-yes").click()
        await expect(page.locator("#done-title")).to_have_text("Your booking is cancelled")
        await expect(page.locator("#done-cancel")).to_be_hidden()
        async with db.read() as session:
            refreshed = await session.get(Booking, booking.id)
            assert refreshed is not None
            assert refreshed.status == BookingStatus.CANCELLED
    finally:
        await db.dispose()


async def test_booking_page_in_japanese_at_phone_width_and_from_the_widget(
    server: str, london_page: Any
) -> None:
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

    widget = await london_page(f"{server}/widget/#booking")
    await widget.locator("#booking-open").click()
    await expect(widget.locator("#type-title")).to_be_visible()
    assert widget.url.endswith("/booking/")


async def test_a_forged_link_gets_a_clear_message(server: str, london_page: Any) -> None:
    page = await london_page(f"{server}/booking/?manage=not-a-real-token")
    await expect(page.locator("#error")).to_have_text(
        "This booking link is not valid. Please use the link from your e-mail."
    )
    await no_violations(page)
