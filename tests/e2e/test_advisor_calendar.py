"""The advisor's calendar in the console: a week or a day of bookings on a time grid (each
block as tall as the booking lasts, its times and duration in words), the time zone by its
name, a booking's details and cancel below the grid, and a change made elsewhere shown
without a reload; Japanese and English, axe-clean, screenshots for the docs."""

from __future__ import annotations

import re
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from livedesk.demo.seed import DEMO_PASSWORD
from tests.e2e.conftest import axe_violations, screenshot

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ADVISOR_EMAIL = "sakura.tanaka@hanami.example"


async def shot(page: Page, name: str) -> None:
    path = await screenshot(page, name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / path.name)


async def no_violations(page: Page) -> None:
    violations = await axe_violations(page)
    assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]


async def console(new_page: Any, server: str, locale: str = "en-GB") -> Page:
    page: Page = await new_page(server + "/staff/", locale=locale, height=1000)
    await page.fill("#email", ADVISOR_EMAIL)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#booking-calendar .cal-grid")).to_be_visible()
    return page


async def test_week_and_day_grid_with_durations_details_and_live_changes(server: str, new_page: Any) -> None:
    page = await console(new_page, server)
    calendar = page.locator("#booking-calendar")
    # The zone by its name, not its IANA id.
    await expect(calendar.locator(".calendar-zone")).to_have_text(
        "Times in your time zone: Japan Standard Time"
    )
    await expect(calendar.locator("[data-view=week]")).to_have_attribute("aria-pressed", "true")
    await expect(calendar.locator(".cal-day")).to_have_count(7)
    block = calendar.locator(".cal-grid .calendar-item").first
    await expect(block).to_be_visible()
    # Times and duration written out; the block is as tall as the booking is long.
    time_text = await block.locator(".cal-block-time").inner_text()
    match = re.fullmatch(r"(\d\d):(\d\d)–(\d\d):(\d\d) \((\d+)m\)", time_text)
    assert match, time_text
    h1, m1, h2, m2, minutes = map(int, match.groups())
    assert (h2 * 60 + m2) - (h1 * 60 + m1) == minutes
    box = await block.bounding_box()
    assert box is not None
    assert abs(box["height"] - minutes * 1.1) < 2, (box, minutes)
    # Earlier bookings sit higher in their day's column.
    tops = await calendar.locator(".cal-day").first.evaluate(
        "d => [...d.querySelectorAll('.calendar-item')].map(i => i.offsetTop)"
    )
    assert tops == sorted(tops)
    await no_violations(page)
    await calendar.locator("#calendar-heading").scroll_into_view_if_needed()
    await shot(page, "console-calendar-desktop")

    # A booking's details: when, how long, what, who; cancel is asked first.
    booking_id = await block.get_attribute("data-booking-id")
    await block.locator("button").click()
    detail = calendar.locator("#calendar-detail")
    await expect(detail).to_be_visible()
    await expect(detail).to_contain_text(f"{minutes} min")
    await expect(block.locator("button")).to_have_attribute("aria-expanded", "true")
    await no_violations(page)

    # The day view: one column, the booking's day reached with "Next day".
    day = date.fromisoformat(await block.evaluate("b => b.closest('.cal-day').dataset.day"))
    first = date.fromisoformat(await calendar.locator(".cal-day").first.get_attribute("data-day") or "")
    await calendar.locator("[data-view=day]").click()
    await expect(calendar.locator(".cal-day")).to_have_count(1)
    await expect(calendar.locator(".cal-day")).to_have_attribute("data-day", first.isoformat())
    for step in range(1, (day - first).days + 1):
        await calendar.get_by_role("button", name="Next day").click()
        shown = (first + timedelta(days=step)).isoformat()
        await expect(calendar.locator(".cal-day")).to_have_attribute("data-day", shown)
    await expect(calendar.locator(f'.cal-grid [data-booking-id="{booking_id}"]')).to_be_visible()
    await no_violations(page)

    # Cancelled elsewhere (another tab of hers): the calendar shows it without a reload
    # when it refreshes (every 30 s while shown, and whenever the page is shown again).
    status = await page.evaluate(
        """async (id) => {
            const me = await (await fetch('/api/v1/auth/me')).json();
            const response = await fetch(`/api/v1/advisors/${me.id}/bookings/${id}/cancel`, {
                method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token},
                body: '{}'});
            return response.status;
        }""",
        booking_id,
    )
    assert status == 200
    await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    await expect(calendar.locator(f'.cal-grid [data-booking-id="{booking_id}"]')).to_have_class(
        re.compile("status-cancelled")
    )
    await expect(calendar.locator("[data-live]")).to_have_text("Calendar updated: 1 new or changed.")


async def test_japanese_calendar(server: str, new_page: Any) -> None:
    page = await console(new_page, server, locale="ja-JP")
    calendar = page.locator("#booking-calendar")
    await expect(calendar.locator(".calendar-zone")).to_have_text(
        "時刻はあなたのタイムゾーンで表示：日本標準時"
    )
    await expect(calendar.locator("[data-view=week]")).to_have_text("週")
    block = calendar.locator(".cal-grid .calendar-item").first
    await expect(block.locator(".cal-block-time")).to_have_text(
        re.compile(r"^\d\d:\d\d–\d\d:\d\d \(\d+ ?分\)$")
    )
    await expect(calendar.locator("#cal-zone option:checked")).to_have_text("日本標準時")
    await no_violations(page)
    await calendar.locator("#calendar-heading").scroll_into_view_if_needed()
    await shot(page, "console-calendar-desktop-ja")
