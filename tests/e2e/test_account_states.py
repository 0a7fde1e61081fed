"""Clear account states: an advisor whose session ends while the console is open (an admin
disables the account, or she signs out in another tab) reads that in words, with a way to sign
in again, instead of "Disconnected from the server"; the sign-in form says why it is back."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from livedesk.demo import data
from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.models import Role
from livedesk.realtime import namespaces
from tests.e2e.conftest import axe_violations, screenshot

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")
ADMIN = next(s for s in data.STAFF if s.role is Role.ADMIN)


@pytest.fixture(autouse=True)
def quick_session_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    # The staff namespace rechecks open sockets' sessions every 30 s; the test needs no wait.
    monkeypatch.setattr(namespaces, "STAFF_RECHECK_SECONDS", 0.3)


async def shot(page: Page, name: str) -> None:
    path = await screenshot(page, name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / path.name)


async def console(new_page: Any, server: str, locale: str = "en-GB") -> Page:
    page: Page = await new_page(server + "/staff/", locale=locale)
    await page.fill("#email", ADVISOR.email)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#presence-state")).to_have_attribute("data-status", "available")
    return page


WRITE = """async ([path]) => {
    const me = await (await fetch('/api/v1/auth/me')).json();
    const response = await fetch(path.replace('{me}', me.id), {
        method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token},
        body: '{}'});
    return response.status;
}"""


async def test_a_disabled_advisor_is_told_so_in_words(server: str, new_page: Any) -> None:
    page = await console(new_page, server)
    staff_id = await page.evaluate("async () => (await (await fetch('/api/v1/auth/me')).json()).id")
    admin: Page = await new_page(server + "/staff/")
    await admin.fill("#email", ADMIN.email)
    await admin.fill("#password", DEMO_PASSWORD)
    await admin.click("#signin-form button[type=submit]")
    await expect(admin.locator("#signed-in-panel")).to_be_visible()
    assert await admin.evaluate(WRITE, [f"/api/v1/staff/{staff_id}/disable"]) == 200

    banner = page.locator("#conn-banner")
    await expect(banner).to_be_visible(timeout=10_000)
    await expect(page.locator("#conn-text")).to_have_text(
        "You are signed out: your session ended. You may have signed out in another tab, the session may "
        "have expired, or an administrator may have changed or disabled your account. "
        "Offers no longer reach you here."
    )
    await expect(page.locator("#reload")).to_have_text("Sign in again")
    await expect(page.locator("#reload")).to_be_focused()
    violations = await axe_violations(page)
    assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]
    await shot(page, "console-signed-out-desktop")

    await page.locator("#reload").click()
    await expect(page.locator("#signin-form")).to_be_visible()
    await expect(page.locator("#signin-notice")).to_have_text(
        "Your session had ended, so you were signed out. Sign in again to continue. "
        "If your account was disabled, ask an administrator."
    )
    # A disabled account cannot sign in again; the form says so.
    await page.fill("#email", ADVISOR.email)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#signin-error")).to_have_text(
        "Wrong e-mail address or password, or the account is disabled."
    )


async def test_signed_out_in_another_tab_in_japanese(server: str, new_page: Any) -> None:
    page = await console(new_page, server, locale="ja-JP")
    other = await page.context.new_page()
    await other.goto(server + "/staff/")
    assert await other.evaluate(WRITE, ["/api/v1/auth/logout"]) == 200
    await expect(page.locator("#conn-text")).to_have_text(
        "ログアウトされました。セッションが終了しています（別のタブでのログアウト、有効期限切れ、"
        "または管理者によるアカウントの変更・無効化）。この画面には相談の依頼が届きません。",
        timeout=10_000,
    )
    await expect(page.locator("#reload")).to_have_text("もう一度ログイン")
    # It stays so: no reconnecting flicker back to "connecting".
    await expect(page.locator("#conn-banner")).to_have_attribute("data-state", "signed_out")
    await shot(page, "console-signed-out-desktop-ja")
    await page.locator("#reload").click()
    await expect(page.locator("#signin-notice")).to_contain_text("セッションが終了したため")
