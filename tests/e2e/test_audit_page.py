"""The admin's audit log page in a real browser with the demo data.

An admin exports a customer's data and then finds that export at the top of the log, named
and linked to the customer's history; a refused sign-in of an advisor shows "—" for who; the
filters (action family, staff member, record type, from a date) narrow the rows and an empty
result says so; "Load older" follows the API's cursor without losing or repeating a row; the
labels are Japanese in Japanese; the page is axe-clean and fits a phone (390 px). An advisor has
no link to it, the page refuses her, and so does the API.
"""

from __future__ import annotations

import re
import shutil
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect
from sqlalchemy import select

from livedesk import audit
from livedesk.demo import data
from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import Role, Shopper, Staff
from livedesk.settings import Settings
from tests.e2e.conftest import axe_violations, screenshot, wait_until

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ADMIN = next(s for s in data.STAFF if s.role is Role.ADMIN)
ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")
OLD_ROWS = 60  # more than one page (50)


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(await screenshot(page, name), SCREENSHOTS / f"{name}.png")


async def assert_axe_clean(page: Page, what: str) -> None:
    violations = await axe_violations(page)
    assert violations == [], (what, [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in violations])


async def ready(page: Page) -> None:
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")


async def sign_in(page: Page, email: str, password: str = DEMO_PASSWORD) -> None:
    await ready(page)
    await page.fill("#signin-email", email)
    await page.fill("#signin-password", password)
    await page.click("#signin-form button[type=submit]")


async def fits_the_width(page: Page) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    wide = await page.evaluate(
        """[...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
        .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)"""
    )
    assert overflow <= 0, (f"{overflow}px wider than the screen", wide)


async def rows_shown(page: Page) -> list[str]:
    """The action of every row in the table, in order."""
    shown: list[str] = await page.locator("#audit-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    return shown


async def test_admin_reads_the_audit_log_an_advisor_cannot(
    server: str, new_page: Any, e2e_settings: Settings
) -> None:
    db = Database(e2e_settings.effective_database_url)
    try:
        async with db.read() as session:
            shopper = (await session.scalars(select(Shopper).order_by(Shopper.created_at).limit(1))).one()
            people = {s.email: s for s in (await session.scalars(select(Staff))).all()}
        admin, advisor = people[ADMIN.email], people[ADVISOR.email]
        # Older history: more rows than one page holds, all before today's actions.
        recording = uuid.uuid4()
        async with db.transaction() as session:
            for i in range(OLD_ROWS):
                audit.record(
                    session,
                    actor=admin.id,
                    action="recording.play",
                    target_type="recording",
                    target_id=recording,
                    details={"shopper_id": str(shopper.id), "role": "admin", "i": i},
                )
    finally:
        await db.dispose()

    # An advisor: no link to the log anywhere, the page refuses her, so does the API.
    page: Page = await new_page(server + "/admin/", media=False)
    await sign_in(page, ADVISOR.email, "not-her-password")  # a refused sign-in: audited, no actor
    await expect(page.locator("#signin-error")).not_to_be_empty()
    await sign_in(page, ADVISOR.email)
    await expect(page.locator("#forbidden-panel")).to_be_visible()
    await expect(page.locator('a[href="/admin/audit.html"]:visible')).to_have_count(0)
    assert (await page.request.get(server + "/api/v1/audit")).status == 403
    await page.goto(server + "/admin/audit.html")
    await expect(page.locator("#audit-denied-title")).to_have_text("Only admins can read the audit log.")
    await expect(page.locator("#audit-panel")).to_be_hidden()

    # The admin exports the customer's data (a real export), then opens the log from the
    # administration page.
    page = await new_page(server + "/admin/", media=False)
    await sign_in(page, ADMIN.email)
    await expect(page.locator("#admin-panel")).to_be_visible()
    export = await page.request.get(f"{server}/api/v1/shoppers/{shopper.id}/export")
    assert export.status == 200, await export.text()
    await page.get_by_role("link", name="Audit log", exact=True).click()
    await expect(page.locator("#audit-panel")).to_be_visible()
    await expect(page.locator("#audit-status")).to_contain_text("entries shown; older ones follow")

    newest = page.locator("#audit-table tbody tr").first
    await expect(newest).to_have_attribute("data-action", "shopper.export")
    await expect(newest).to_contain_text("Exported a customer's data")
    await expect(newest).to_contain_text(admin.display_name)
    link = newest.get_by_role("link", name=re.compile(r"^Customer "))
    await expect(link).to_have_attribute("href", f"/history/?shopper={shopper.id}")
    # The refused sign-in (queued by the deferred writer): nobody acted.
    refused = page.locator('#audit-table tbody tr[data-action="staff.login_failed"]').first
    await expect(refused).to_contain_text("Sign-in refused")
    await expect(refused).to_contain_text("No staff member")
    await expect(refused).to_contain_text("reason: password")
    # Times in the viewer's local time, with the full instant in the markup.
    stamp = await newest.locator("time").get_attribute("datetime")
    assert stamp is not None
    assert stamp.startswith(str(utcnow().year))

    await assert_axe_clean(page, "desktop, en")
    await shot(page, "admin-audit-desktop")

    # Load older: the next page follows the cursor; every row once.
    assert len(await rows_shown(page)) == 50
    for _ in range(10):
        shown = len(await rows_shown(page))
        await page.click("#audit-older")
        await expect(page.locator("#audit-table tbody tr")).not_to_have_count(shown)
        if await page.locator("#audit-end").is_visible():
            break
    await expect(page.locator("#audit-end")).to_be_focused()
    ids = await page.locator("#audit-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert len(ids) == len(set(ids)) > 50
    plays = [a for a in await rows_shown(page) if a == "recording.play"]
    assert len(plays) == OLD_ROWS
    await expect(page.locator("#audit-older")).to_be_hidden()

    # Filters narrow: a family, a staff member, a record type, a date.
    await page.select_option("#audit-action", "shopper")
    assert "shopper.export" in await wait_until(lambda: _only(page, "shopper."))
    await page.select_option("#audit-action", "")
    await page.select_option("#audit-actor", str(advisor.id))
    assert await wait_until(lambda: _only(page, "staff.login")) == ["staff.login"]
    await page.select_option("#audit-actor", "")
    await page.select_option("#audit-target", "staff")
    assert "staff.login_failed" in await wait_until(lambda: _only(page, "staff."))
    tomorrow = (utcnow() + timedelta(days=2)).date().isoformat()
    await page.fill("#audit-since", tomorrow)
    await expect(page.locator("#audit-status")).to_have_text("No entries match these filters.")
    await expect(page.locator("#audit-table")).to_be_hidden()
    await page.click("#audit-clear")
    await expect(page.locator("#audit-table tbody tr").first).to_have_attribute(
        "data-action", "shopper.export"
    )
    assert await page.input_value("#audit-since") == ""

    # Japanese.
    await page.click("[data-lang-switch] button[data-lang=ja]")
    await expect(page.locator("html")).to_have_attribute("lang", "ja")
    await expect(page.locator("#audit-title")).to_have_text("監査ログ")
    await expect(newest).to_contain_text("顧客データを書き出した")
    await expect(page.locator("#audit-table thead th").first).to_have_text("日時")
    await expect(page.locator("#audit-action option[value=shopper]")).to_have_text("顧客データ")
    await expect(refused).to_contain_text("サインインが拒否された")
    await assert_axe_clean(page, "desktop, ja")
    await shot(page, "admin-audit-desktop-ja")

    # A phone: one card per entry, nothing wider than the screen, in both languages.
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "admin-audit-phone-ja")
    await fits_the_width(page)
    await assert_axe_clean(page, "phone, ja")
    await page.click("[data-lang-switch] button[data-lang=en]")
    await expect(newest).to_contain_text("Exported a customer's data")
    await shot(page, "admin-audit-phone")
    await fits_the_width(page)
    await assert_axe_clean(page, "phone, en")


async def _only(page: Page, prefix: str) -> list[str]:
    """The rows' actions once the table is loaded (not busy) and shows only actions starting
    with ``prefix``; [] until then."""
    if await page.get_attribute("#audit-table", "aria-busy") != "false":
        return []
    shown = await rows_shown(page)
    return shown if shown and all(a.startswith(prefix) for a in shown) else []
