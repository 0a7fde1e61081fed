"""The admin page in a real browser against the real app with the demo data: sign-in, the
staff list, create / edit / disable staff with server errors shown at their fields, teams, a
profile photo upload, the "admins only" answer for other roles, both languages, a phone."""

from __future__ import annotations

import re
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

import tests.e2e.conftest as e2e
from livedesk.app import create_app as real_create_app
from livedesk.demo import data
from livedesk.models import Role
from livedesk.staff import photos
from tests.e2e.conftest import axe_violations, screenshot

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ADMIN = next(s for s in data.STAFF if s.role is Role.ADMIN)
ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")
PHOTO_ROUTE = "/api/v1/staff/{staff_id}/photo"


@pytest.fixture(autouse=True)
def photo_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app the ``server`` fixture builds, with the photo routes whether or not app.py
    registers them yet."""

    def create_app(settings: Any) -> Any:
        app = real_create_app(settings)
        if not any(r.canonical == PHOTO_ROUTE for r in app.router.resources()):
            photos.setup_routes(app)
        return app

    monkeypatch.setattr(e2e, "create_app", create_app)


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (214, 90, 120)) -> bytes:
    """A small, valid, single-colour PNG."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    row = b"\x00" + bytes(rgb) * width
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


async def ready(page: Page) -> None:
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")


async def sign_in(page: Page, email: str, password: str) -> None:
    await ready(page)
    await expect(page.locator("#signin-panel")).to_be_visible()
    await page.locator("#signin-email").fill(email)
    await page.locator("#signin-password").fill(password)
    await page.locator("#signin-form button[type=submit]").click()


async def open_as_admin(new_page: Any, server: str, password: str, **options: Any) -> Page:
    page: Page = await new_page(server + "/admin/", **options)
    await sign_in(page, ADMIN.email, password)
    await expect(page.locator("#admin-panel")).to_be_visible()
    await expect(page.locator("#staff-rows tr")).to_have_count(len(data.STAFF))
    await expect(page.locator("#team-rows tr")).to_have_count(len(data.TEAMS))
    return page


def row(page: Page, name: str) -> Any:
    return page.locator("#staff-rows tr").filter(has=page.get_by_text(name, exact=True))


def team_row(page: Page, name: str) -> Any:
    return page.locator("#team-rows tr").filter(has=page.locator("th", has_text=name))


async def keep_screenshot(page: Page, name: str) -> None:
    path = await screenshot(page, name)
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)


async def staff_api(page: Page, server: str) -> list[dict[str, Any]]:
    response = await page.request.get(server + "/api/v1/staff")
    assert response.status == 200
    body: list[dict[str, Any]] = await response.json()
    return body


async def can_sign_in(server: str, email: str, password: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        response = await http.post(server + "/api/v1/auth/login", json={"email": email, "password": password})
        return response.status, await response.json()


# ---------------------------------------------------------------- tests


async def test_admin_sees_the_demo_staff_in_both_languages(
    server: str, new_page: Any, demo_password: str
) -> None:
    page = await open_as_admin(new_page, server, demo_password)
    names = await page.locator("#staff-rows .person-name").all_inner_texts()
    assert sorted(names) == sorted(s.display_name for s in data.STAFF)
    assert await page.locator("#staff-count").inner_text() == "9 staff members shown"

    sakura = row(page, ADVISOR.display_name)
    await expect(sakura.locator("td").nth(0)).to_have_text("advisor")
    await expect(sakura.locator("td").nth(1)).to_have_text("Beauty")
    await expect(sakura.locator("td").nth(2)).to_have_text("Active")
    await expect(sakura.locator(".chips li")).to_have_text(["Skincare", "Make-up"])
    await expect(sakura.locator("td").nth(4)).to_have_text("Japanese, English")
    await expect(sakura.locator(".person-email")).to_have_text(ADVISOR.email)
    # The demo avatars are shown; the admin's own row has no disable button.
    assert await sakura.locator("img.avatar").get_attribute("src") == ADVISOR.photo_url
    own = row(page, ADMIN.display_name)
    await expect(own.locator(".badge-you")).to_be_visible()
    await expect(own.locator("button[data-action=toggle]")).to_have_count(0)

    # Filters go to the API: role, then team.
    await page.locator("#filter-role").select_option("supervisor")
    await expect(page.locator("#staff-rows tr")).to_have_count(2)
    await page.locator("#filter-role").select_option("")
    await page.locator("#filter-team").select_option(label="Fashion")
    await expect(page.locator("#staff-rows tr")).to_have_count(3)
    await page.locator("#filter-team").select_option("")
    await expect(page.locator("#staff-rows tr")).to_have_count(9)
    await expect(team_row(page, "Beauty").locator("td.number")).to_have_text("5")

    assert await axe_violations(page) == []
    await keep_screenshot(page, "admin-staff-desktop")

    # Japanese, chosen with the switch and kept across a reload.
    await page.get_by_role("button", name="日本語").click()
    await expect(page.locator("html")).to_have_attribute("lang", "ja")
    await expect(page.locator("#staff-heading")).to_have_text("スタッフ")
    await expect(row(page, ADVISOR.display_name).locator("td").nth(2)).to_have_text("有効")
    assert await axe_violations(page) == []
    await screenshot(page, "admin-staff-desktop-ja")
    await page.reload()
    await ready(page)
    await expect(page.locator("#admin-panel")).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("lang", "ja")
    await expect(page.locator("#new-staff")).to_have_text("スタッフを追加")
    assert await page.title() == "管理 — livedesk"


async def test_create_edit_and_disable_an_advisor(server: str, new_page: Any, demo_password: str) -> None:
    page = await open_as_admin(new_page, server, demo_password)
    dialog = page.locator("#staff-dialog")
    await page.get_by_role("button", name="New staff member").click()
    await expect(dialog).to_be_visible()
    await expect(page.locator("#sf-email")).to_be_focused()

    await page.locator("#sf-email").fill("not-an-address")
    await page.locator("#sf-password").fill("short")
    await page.locator("#sf-display-name").fill("Aoi Fujimoto")
    await page.locator("#sf-team").select_option(label="Beauty")
    await page.locator("#sf-skills").fill("skincare, fragrance")
    await page.locator("#sf-languages").fill("ja, en")
    await page.locator("#sf-timezone").fill("Asia/Tokyo")
    await page.locator("#sf-bio").fill("Fragrance layering and gentle skincare.")
    await page.locator("#staff-save").click()

    # The server's 422 names both fields; each message sits next to its field.
    email_error = page.locator("#sf-email-error")
    await expect(email_error).to_be_visible()
    await expect(email_error).to_contain_text("not a valid e-mail address")
    await expect(page.locator("#sf-password-error")).to_contain_text("at least 10 characters")
    await expect(page.locator("#sf-email")).to_have_attribute("aria-invalid", "true")
    assert "sf-email-error" in (await page.locator("#sf-email").get_attribute("aria-describedby") or "")
    assert "sf-password-error" in (await page.locator("#sf-password").get_attribute("aria-describedby") or "")
    await expect(page.locator("#sf-email")).to_be_focused()
    await expect(page.locator("#staff-form-alert")).to_have_text("Please correct the marked fields.")
    assert await axe_violations(page) == []
    await screenshot(page, "admin-create-errors")

    await page.locator("#sf-email").fill("aoi.fujimoto@hanami.example")
    await page.locator("#sf-password").fill("a long first password")
    await page.locator("#staff-save").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#staff-status")).to_have_text("Created the account of Aoi Fujimoto.")
    await expect(page.locator("#staff-rows tr")).to_have_count(len(data.STAFF) + 1)
    aoi = row(page, "Aoi Fujimoto")
    await expect(aoi.locator(".chips li")).to_have_text(["Skincare", "Fragrance"])
    await expect(aoi.locator("td").nth(1)).to_have_text("Beauty")
    created = {s["email"]: s for s in await staff_api(page, server)}["aoi.fujimoto@hanami.example"]
    assert created["role"] == "advisor"
    assert created["skills"] == ["skincare", "fragrance"]
    assert created["languages"] == ["ja", "en"]
    assert created["timezone"] == "Asia/Tokyo"
    assert created["nominable"] is True
    await expect(team_row(page, "Beauty").locator("td.number")).to_have_text("6")
    status, _ = await can_sign_in(server, "aoi.fujimoto@hanami.example", "a long first password")
    assert status == 200

    # Edit: the display name.
    await aoi.get_by_role("button", name="Edit Aoi Fujimoto").click()
    await expect(page.locator("#staff-dialog-title")).to_have_text("Edit Aoi Fujimoto")
    await expect(page.locator("#sf-skills")).to_have_value("skincare, fragrance")
    await page.locator("#sf-display-name").fill("藤本 葵")
    await keep_screenshot(page, "admin-edit-desktop")
    await page.locator("#staff-save").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#staff-status")).to_have_text("Saved the changes to 藤本 葵.")
    aoi = row(page, "藤本 葵")
    await expect(aoi).to_have_count(1)
    await expect(aoi.get_by_role("button", name="Edit 藤本 葵")).to_be_focused()

    # Disable: asked first, then marked, and the account can no longer sign in.
    await aoi.get_by_role("button", name="Disable 藤本 葵").click()
    confirm = page.locator("#confirm-dialog")
    await expect(confirm).to_be_visible()
    await expect(page.locator("#confirm-title")).to_have_text("Disable 藤本 葵?")
    await page.locator("#confirm-ok").click()
    await expect(page.locator("#staff-status")).to_have_text("藤本 葵 is disabled and has been signed out.")
    await expect(aoi.locator(".badge-disabled")).to_have_text("Disabled")
    await expect(aoi).to_have_class("is-disabled")
    status, body = await can_sign_in(server, "aoi.fujimoto@hanami.example", "a long first password")
    assert status == 401
    assert body["error"]["code"] == "login_failed"
    await page.locator("#filter-active").select_option("false")
    await expect(page.locator("#staff-rows tr")).to_have_count(1)
    await page.locator("#filter-active").select_option("")

    # Enabled again, it may sign in again.
    await aoi.get_by_role("button", name="Enable 藤本 葵").click()
    await expect(page.locator("#staff-status")).to_have_text("藤本 葵 is enabled again.")
    await expect(aoi.locator(".badge-active")).to_have_text("Active")
    status, _ = await can_sign_in(server, "aoi.fujimoto@hanami.example", "a long first password")
    assert status == 200


async def test_password_reset_and_email_conflict_from_the_edit_dialog(
    server: str, new_page: Any, demo_password: str
) -> None:
    page = await open_as_admin(new_page, server, demo_password)
    sakura = row(page, ADVISOR.display_name)
    await sakura.get_by_role("button", name=f"Edit {ADVISOR.display_name}").click()
    await expect(page.locator("#sf-password-label")).to_have_text("New password")
    # Another account's address: a 409 naming the e-mail field.
    await page.locator("#sf-email").fill(ADMIN.email)
    await page.locator("#staff-save").click()
    await expect(page.locator("#sf-email-error")).to_have_text(
        f"A staff account with the e-mail {ADMIN.email} already exists"
    )
    await page.locator("#sf-email").fill(ADVISOR.email)
    await page.locator("#sf-password").fill("a brand new password")
    await page.locator("#staff-save").click()
    await expect(page.locator("#staff-dialog")).to_be_hidden()
    status, _ = await can_sign_in(server, ADVISOR.email, demo_password)
    assert status == 401
    status, _ = await can_sign_in(server, ADVISOR.email, "a brand new password")
    assert status == 200


async def test_teams_create_rename_delete_and_refusal(server: str, new_page: Any, demo_password: str) -> None:
    page = await open_as_admin(new_page, server, demo_password)
    await page.locator("#team-name").fill("Gift wrapping")
    await page.locator("#team-description").fill("Seasonal gift service")
    await page.locator("#team-create").click()
    await expect(page.locator("#teams-status")).to_have_text("Created the team Gift wrapping.")
    await expect(page.locator("#team-rows tr")).to_have_count(3)
    await expect(team_row(page, "Gift wrapping").locator("td.number")).to_have_text("0")
    # The new team is offered in the pickers at once.
    assert "Gift wrapping" in await page.locator("#filter-team option").all_inner_texts()

    # A name that is taken: the 409 is shown at the name field.
    await page.locator("#team-name").fill("beauty")
    await page.locator("#team-create").click()
    await expect(page.locator("#team-name-error")).to_have_text("A team named 'beauty' already exists")
    await expect(page.locator("#team-name")).to_have_attribute("aria-invalid", "true")

    await team_row(page, "Gift wrapping").get_by_role("button", name="Rename Gift wrapping").click()
    await expect(page.locator("#team-dialog")).to_be_visible()
    await page.locator("#te-name").fill("Gifts")
    await page.locator("#team-edit-save").click()
    await expect(page.locator("#team-dialog")).to_be_hidden()
    await expect(page.locator("#teams-status")).to_have_text("Renamed the team Gift wrapping to Gifts.")
    await expect(team_row(page, "Gifts")).to_have_count(1)

    await team_row(page, "Gifts").get_by_role("button", name="Delete Gifts").click()
    await expect(page.locator("#confirm-title")).to_have_text("Delete the team Gifts?")
    await page.locator("#confirm-ok").click()
    await expect(page.locator("#teams-status")).to_have_text("Deleted the team Gifts.")
    await expect(page.locator("#team-rows tr")).to_have_count(2)

    # A team with members: the API refuses, and its message is shown.
    delete_beauty = team_row(page, "Beauty").get_by_role("button", name="Delete Beauty")
    await delete_beauty.click()
    await page.locator("#confirm-ok").click()
    await expect(page.locator("#teams-alert")).to_have_text(
        "The team 'Beauty' still has 5 staff member(s); move them to another team first"
    )
    await expect(delete_beauty).to_be_focused()
    await expect(page.locator("#team-rows tr")).to_have_count(2)

    # In Japanese the same refusal is translated.
    await page.get_by_role("button", name="日本語").click()
    await expect(page.locator("#teams-alert")).to_have_text(
        "このチームにはまだ 5 人のメンバーがいます。先に別のチームへ移してください。"
    )


async def test_photo_upload_shows_in_the_list(
    server: str, new_page: Any, demo_password: str, tmp_path: Path
) -> None:
    page = await open_as_admin(new_page, server, demo_password)
    image = tmp_path / "misaki.png"
    image.write_bytes(png(16, 16))
    misaki = row(page, "佐藤 美咲")
    await misaki.get_by_role("button", name="Edit 佐藤 美咲").click()
    await page.locator("#sf-photo").set_input_files(str(image))
    await expect(page.locator("#sf-photo-chosen")).to_contain_text("misaki.png")
    await expect(page.locator("#sf-photo-preview")).to_have_attribute("src", _starts_with("data:image/png"))
    await page.locator("#staff-save").click()
    await expect(page.locator("#staff-dialog")).to_be_hidden()
    await expect(page.locator("#staff-status")).to_have_text("Saved the changes to 佐藤 美咲.")

    avatar = misaki.locator("img.avatar")
    # The list is reloaded after the save: wait for the row to show the new photo.
    await expect(avatar).to_have_attribute("src", re.compile(r"^/api/v1/staff/.*/photo\?v="))
    src = await avatar.get_attribute("src")
    assert src is not None
    await page.wait_for_function(
        "(img) => img.complete && img.naturalWidth === 16", arg=await avatar.element_handle()
    )
    served = await page.request.get(server + src)
    assert served.status == 200
    assert await served.body() == image.read_bytes()
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"

    # A file that is not an image is refused in the page before any upload.
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    await misaki.get_by_role("button", name="Edit 佐藤 美咲").click()
    await page.locator("#sf-photo").set_input_files(str(text))
    await expect(page.locator("#sf-photo-error")).to_have_text("Choose a PNG, JPEG or WebP image.")
    await page.locator("#staff-cancel").click()


async def test_advisor_is_told_admins_only(server: str, new_page: Any, demo_password: str) -> None:
    page: Page = await new_page(server + "/admin/")
    await sign_in(page, ADVISOR.email, demo_password)
    panel = page.locator("#forbidden-panel")
    await expect(panel).to_be_visible()
    await expect(page.locator("#forbidden-title")).to_have_text("Admins only")
    await expect(page.locator("#forbidden-text")).to_contain_text(ADVISOR.display_name)
    # The API behind the page refuses this account too.
    status = await page.evaluate(
        """async () => (await fetch('/api/v1/teams', {method: 'POST', headers: {'Content-Type':
        'application/json', 'X-CSRF-Token': decodeURIComponent((document.cookie.match(/livedesk_csrf=([^;]+)/)
        || [])[1] || '')}, body: JSON.stringify({name: 'Sneaky'})})).status"""
    )
    assert status == 403
    await expect(page.locator("#admin-panel")).to_be_hidden()
    assert await axe_violations(page) == []
    await screenshot(page, "admin-forbidden")
    # Nothing about the account changed.
    # unsafe: keep cookies for an IP address (the test server's 127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await http.post(server + "/api/v1/auth/login", json={"email": ADMIN.email, "password": demo_password})
        listed = await (await http.get(server + "/api/v1/staff")).json()
    sakura = {s["email"]: s for s in listed}[ADVISOR.email]
    assert sakura["display_name"] == ADVISOR.display_name
    assert sakura["active"] is True

    # Sign out, then a wrong password shows the server's answer.
    await page.locator("#signout").click()
    await expect(page.locator("#signin-notice")).to_have_text("You have signed out.")
    await sign_in(page, ADVISOR.email, "wrong password")
    await expect(page.locator("#signin-error")).to_have_text(
        "Wrong e-mail or password, or the account is disabled"
    )


async def test_phone_layout(server: str, new_page: Any, demo_password: str) -> None:
    page = await open_as_admin(new_page, server, demo_password, width=390, height=844)
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    assert await axe_violations(page) == []
    await keep_screenshot(page, "admin-phone")
    await page.get_by_role("button", name="日本語").click()
    await expect(page.locator("#staff-heading")).to_have_text("スタッフ")
    assert await axe_violations(page) == []
    await page.get_by_role("button", name="スタッフを追加").click()
    await expect(page.locator("#staff-dialog")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    box = await page.locator("#staff-dialog").bounding_box()
    assert box is not None
    assert box["width"] <= 390
    assert await axe_violations(page) == []
    await screenshot(page, "admin-phone-dialog-ja")


def _starts_with(prefix: str) -> Any:
    import re

    return re.compile("^" + re.escape(prefix))
