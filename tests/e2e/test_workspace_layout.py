"""The layouts people work in, measured in a real browser (issue 19, items 6, 11 and 13).

The advisor's workspace at 1366×768 and 1920×1080: video, chat input and the customer panel
(profile, latest purchases, history, notes) are inside the window without scrolling the page;
several consultations switch from the rail, whose tabs carry unread badges; in wrap-up the
notes come first (and on a phone they come before the chat). The shopper's call page at
390×844: Join is in view without scrolling, the recording and "a supervisor is listening"
badges sit below the header instead of over it, the call's icon buttons show their words, and
screen sharing is not offered by a browser that cannot share. Axe-clean in both languages;
the screenshots go to docs/screenshots/ for the README.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect
from pydantic import SecretStr

from livedesk.demo import data
from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.models import Role
from livedesk.settings import Settings
from tests.e2e.conftest import axe_violations, screenshot, wait_until
from tests.e2e.test_advisor_console import (
    ADVISOR,
    SHOP_SECRET,
    SHOPPER_PAGE_SETUP,
    SHOPPER_START_CALL,
    demo_shoppers,
    offer_card,
    remote_video_width,
    shopper_says,
    shopper_socket,
    sign_in,
    switch_language,
    visitor_token,
    workspace,
)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SUPERVISOR = next(s for s in data.STAFF if s.role is Role.SUPERVISOR)
PHONE = {"width": 390, "height": 844}
# A phone browser: no screen capture (Chrome on Android, Safari on iOS).
NO_SCREEN_SHARE = "delete MediaDevices.prototype.getDisplayMedia;"
PREVIEW_PLAYING = "document.getElementById('preview-video').videoWidth > 0"
# The first ancestor that scrolls or clips and does not show the element whole (else null).
CLIPPED_BY = """(el) => {
    const r = el.getBoundingClientRect();
    for (let p = el.parentElement; p; p = p.parentElement) {
        const style = getComputedStyle(p);
        if (!/auto|scroll|hidden|clip/.test(style.overflowX + style.overflowY)) continue;
        const q = p.getBoundingClientRect();
        const out = r.top < q.top - 0.5 || r.bottom > q.bottom + 0.5;
        if (out || r.left < q.left - 0.5 || r.right > q.right + 0.5) return p.className || p.tagName;
    }
    return null;
}"""


@pytest.fixture
async def e2e_settings(e2e_settings: Settings) -> Settings:
    return e2e_settings.model_copy(
        update={"shop_signing_secret": SecretStr(SHOP_SECRET), "offer_timeout_seconds": 90.0}
    )


async def shot(page: Page, name: str) -> None:
    path = await screenshot(page, name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / f"{name}.png")


async def assert_axe_clean(page: Page, what: str) -> None:
    violations = await axe_violations(page)
    assert violations == [], (what, [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in violations])


async def box(locator: Locator) -> dict[str, float]:
    found = await locator.bounding_box()
    assert found is not None, f"{locator} has no box (not rendered)"
    return {"x": found["x"], "y": found["y"], "width": found["width"], "height": found["height"]}


async def assert_in_window(page: Page, **parts: Locator) -> None:
    """Each part is drawn, whole, inside the window, and nothing was scrolled to get there."""
    size = page.viewport_size
    assert size is not None
    scrolled = await page.evaluate(
        """() => ({ page: window.scrollY, main: document.getElementById('main').scrollTop,
                    tall: document.documentElement.scrollHeight - innerHeight })"""
    )
    assert scrolled["page"] == 0, scrolled
    assert scrolled["main"] == 0, scrolled
    assert scrolled["tall"] <= 0, f"the page itself scrolls by {scrolled['tall']} px"
    for name, locator in parts.items():
        await expect(locator).to_be_visible()
        b = await box(locator)
        where = f"{name} at {b} is not inside {size}"
        assert b["width"] > 0, where
        assert b["height"] > 0, where
        assert b["x"] >= 0, where
        assert b["y"] >= 0, where
        assert b["x"] + b["width"] <= size["width"] + 0.5, where
        assert b["y"] + b["height"] <= size["height"] + 0.5, where
        # ... and not cut off by a pane that scrolls (or clips) it.
        clipped_by = await locator.evaluate(CLIPPED_BY)
        assert clipped_by is None, f"{name} is cut off by {clipped_by}"


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


async def workspace_parts(ws: Locator) -> dict[str, Locator]:
    return {
        "video": ws.locator(".call-remote"),
        "call controls": ws.locator(".call-controls"),
        "chat log": ws.locator(".chat-scroll"),
        "chat input": ws.locator("[data-part=input]"),
        "customer profile": ws.locator(".profile .facts"),
        "latest purchases": ws.locator(".cust-purchases .order").last,
        "history": ws.locator(".timeline .tl-item .tl-meta").first,
        "notes": ws.locator("[data-part=notes]"),
        "close with notes": ws.locator("[data-part=close]"),
    }


async def test_workspace_shows_video_chat_and_customer_at_once(server: str, new_page: Any) -> None:
    video_shopper, chat_shopper = demo_shoppers()[0:2]
    page = await new_page(server + "/staff/", width=1366, height=768)
    await sign_in(page)

    # A chat first, then a video call: two consultations in the rail.
    sock = await shopper_socket(server, chat_shopper)
    try:
        chat_id = (await sock.ok("queue.join", {"kind": "chat"}))["id"]
        await offer_card(page, chat_id).get_by_role("button", name="Accept").click()
        await expect(workspace(page, chat_id)).to_be_visible()

        shop = await new_page(server + "/")
        visit = await visitor_token(server, video_shopper)
        video_id = await shop.evaluate(SHOPPER_PAGE_SETUP, visit["token"])
        await offer_card(page, video_id).get_by_role("button", name="Accept").click()
        ws = workspace(page, video_id)
        await expect(ws).to_be_visible()
        await wait_until(lambda: shop.evaluate("window.shopper.updates.some((c) => c.status === 'active')"))
        await shop.evaluate(SHOPPER_START_CALL, video_id)
        await wait_until(lambda: remote_video_width(page, video_id), within=20)
        await expect(ws.locator(".call-state")).to_have_text("Connected")
        await expect(ws.locator(".cust-purchases .order")).to_have_count(min(3, len(video_shopper.orders)))
        await expect(ws.locator(".timeline .tl-item").first).to_be_visible()
        await shop.evaluate(
            """(cid) => window.shopper.socket.chat(cid)
                .send({ kind: "text", body: "Can you show me the serum up close?" })""",
            video_id,
        )
        await expect(ws.locator(".msg-shopper .msg-body")).to_have_text("Can you show me the serum up close?")
        await ws.get_by_label("Message to the shopper").fill("Of course — here it is, next to the cream.")
        await ws.get_by_label("Message to the shopper").press("Enter")
        await expect(ws.locator(".msg-mine .msg-state")).to_have_text(re.compile("Sent|Read"))
        # This browser can share its screen, so the console offers it.
        await expect(ws.get_by_role("button", name="Share screen")).to_be_visible()

        # The hidden chat gets a message: its tab in the rail says so; the tabs are a vertical
        # list that the arrow keys walk.
        await shopper_says(sock, chat_id, "Is the serum in stock?")
        chat_tab = page.get_by_role("tab", name=chat_shopper.display_name)
        video_tab = page.get_by_role("tab", name=video_shopper.display_name)
        await expect(chat_tab.locator(".ws-tab-unread")).to_have_text("1 unread")
        await expect(page.locator("#ws-tabs")).to_have_attribute("aria-orientation", "vertical")
        tab_boxes = [await box(chat_tab), await box(video_tab)]
        assert tab_boxes[0]["y"] + tab_boxes[0]["height"] <= tab_boxes[1]["y"], tab_boxes
        assert abs(tab_boxes[0]["x"] - tab_boxes[1]["x"]) < 1, tab_boxes

        # Everything the advisor works with is in the window at once, nothing scrolled.
        parts = await workspace_parts(ws)
        await assert_in_window(page, unread=chat_tab.locator(".ws-tab-unread"), **parts)
        # Video over chat, customer panel beside them, notes under the customer panel.
        names = ("video", "chat log", "customer profile", "notes")
        video, chat, profile, notes = [await box(parts[k]) for k in names]
        assert video["y"] + video["height"] <= chat["y"], (video, chat)
        assert profile["x"] >= chat["x"] + chat["width"], (profile, chat)
        assert notes["y"] > profile["y"], (notes, profile)
        await assert_axe_clean(page, "workspace 1366 en")
        await shot(page, "console-workspace-1366")

        await switch_language(page, "ja")
        await expect(ws.locator(".call-state")).to_have_text("接続済み")
        await assert_in_window(page, **parts)
        await assert_axe_clean(page, "workspace 1366 ja")
        await shot(page, "console-workspace-1366-ja")
        await switch_language(page, "en")

        await page.set_viewport_size({"width": 1920, "height": 1080})
        await assert_in_window(page, **parts)
        await shot(page, "console-workspace-1920")
        # A smaller laptop screen still has it all (the header keeps to one row).
        await page.set_viewport_size({"width": 1280, "height": 720})
        await assert_in_window(page, **parts)
        await page.set_viewport_size({"width": 1366, "height": 768})

        # Down from the video tab: the chat, read once shown (the badge goes).
        await video_tab.focus()
        await page.keyboard.press("ArrowUp")
        await expect(chat_tab).to_be_focused()
        await expect(chat_tab).to_have_attribute("aria-selected", "true")
        await expect(chat_tab.locator(".ws-tab-unread")).to_be_hidden()
        chat_ws = workspace(page, chat_id)
        await assert_in_window(
            page,
            chat_input=chat_ws.locator("[data-part=input]"),
            profile=chat_ws.locator(".profile .facts"),
            notes=chat_ws.locator("[data-part=notes]"),
        )
        await page.keyboard.press("ArrowDown")
        await expect(video_tab).to_be_focused()
        await expect(ws).to_be_visible()

        # End: wrap-up puts the notes first, in focus, above the customer panel.
        await ws.get_by_role("button", name="End", exact=True).click()
        await expect(ws.locator(".wrapup-hint")).to_be_visible()
        await expect(ws.locator("[data-part=notes]")).to_be_focused()
        await expect(video_tab.locator(".ws-tab-state")).to_have_text("Ended — wrap-up")
        first = await ws.locator(".ws-body").evaluate("(body) => body.firstElementChild.dataset.part")
        assert first == "wrapup"
        notes_box, profile_box = await box(ws.locator(".wrapup")), await box(ws.locator(".profile"))
        assert notes_box["y"] + notes_box["height"] <= profile_box["y"], (notes_box, profile_box)
        await assert_in_window(
            page,
            notes=ws.locator("[data-part=notes]"),
            close=ws.locator("[data-part=close]"),
            chat_input=ws.locator("[data-part=input]"),
        )
        await ws.locator("[data-part=notes]").fill("Showed two serums; sample of the cream sent.")
        await assert_axe_clean(page, "wrap-up 1366 en")
        await shot(page, "console-wrapup-1366")
        await ws.get_by_role("button", name="Close with notes").click()
        await expect(ws).to_have_count(0)
    finally:
        await sock.close()


async def test_workspace_on_a_phone_puts_wrap_up_notes_first(server: str, new_page: Any) -> None:
    shopper = demo_shoppers()[2]
    page = await new_page(server + "/staff/", locale="ja-JP", **PHONE)
    await sign_in(page)
    sock = await shopper_socket(server, shopper)
    try:
        cid = (await sock.ok("queue.join", {"kind": "chat"}))["id"]
        await offer_card(page, cid).get_by_role("button", name="応答する").click()
        ws = workspace(page, cid)
        await expect(ws).to_be_visible()
        await shopper_says(sock, cid, "サイズの相談です")
        await expect(ws.locator(".msg-shopper .msg-body")).to_have_text("サイズの相談です")
        await expect(ws.locator(".cust-purchases .order").first).to_be_visible()
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        await assert_axe_clean(page, "workspace phone ja")

        # The shopper ends it: on a phone the notes come before the chat.
        await sock.ok("consultation.end", {"consultation_id": cid})
        await expect(ws.locator(".wrapup-hint")).to_be_visible()
        notes, chat = await box(ws.locator(".wrapup")), await box(ws.locator(".chat"))
        assert notes["y"] + notes["height"] <= chat["y"], (notes, chat)
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        await assert_axe_clean(page, "wrap-up phone ja")
        await ws.evaluate("(el) => el.scrollIntoView()")
        await shot(page, "console-wrapup-phone-ja")
    finally:
        await sock.close()


async def staff_page(new_page: Any, url: str, email: str, *, form: str = "") -> Page:
    page: Page = await new_page(url)
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    await page.fill(f"#{form}email", email)
    await page.fill(f"#{form}password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")
    return page


async def test_call_page_on_a_phone_keeps_join_and_header_clear(server: str, new_page: Any) -> None:
    # In a call on a phone without screen capture; the advisor records, a supervisor listens.
    console = await staff_page(new_page, server + "/staff/", ADVISOR.email)
    await expect(console.locator("#presence-state")).to_have_attribute("data-status", "available")
    shopper = await new_page(server + "/widget/", **PHONE)
    await shopper.add_init_script(NO_SCREEN_SHARE)
    await shopper.reload()
    await shopper.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    await shopper.wait_for_load_state("networkidle")
    await shopper.locator("#talk-video").click()
    card = console.locator(".offer").first
    await expect(card).to_be_visible(timeout=15_000)
    cid = await card.get_attribute("data-consultation-id")
    await card.get_by_role("button", name="Accept").click()
    ws = console.locator(f'.workspace[data-consultation-id="{cid}"]')
    await shopper.wait_for_url(re.compile(r"/call/\?c="), timeout=15_000)
    await expect(shopper.locator("#view-preview")).to_be_visible(timeout=15_000)
    await expect(shopper.locator("#join-button")).to_be_enabled(timeout=15_000)
    await assert_in_window(shopper, join=shopper.locator("#join-button"))
    await shopper.locator("#join-button").click()
    await expect(ws.locator(".call .call-state")).to_have_text("Connected", timeout=30_000)

    # No screen capture in this browser: no share button. Every other control shows its word.
    await expect(shopper.locator("#share-button")).to_be_hidden()
    controls = shopper.locator("#controls .control:visible")
    assert await controls.count() >= 5
    for i in range(await controls.count()):
        label = controls.nth(i).locator(".control-label")
        await expect(label).not_to_be_empty()
        b = await box(label)
        assert b["width"] > 8, (i, b)
        assert b["height"] > 8, (i, b)

    board = await staff_page(new_page, server + "/supervisor/", SUPERVISOR.email, form="signin-")
    listen = board.get_by_test_id("monitor-panel").locator(f'li[data-consultation-id="{cid}"]')
    await listen.get_by_test_id("monitor-listen").click(timeout=15_000)
    notice = shopper.get_by_test_id("monitoring-notice")
    await expect(notice).to_have_text("A supervisor is listening to this call", timeout=15_000)
    await ws.get_by_test_id("recording-toggle").click()
    consent = shopper.get_by_test_id("recording-consent")
    await expect(consent).to_be_visible(timeout=10_000)
    indicator = shopper.get_by_test_id("recording-indicator")
    await expect(indicator).to_be_visible()

    async def header_clear(what: str) -> None:
        header = await box(shopper.locator(".call-header"))
        for name, badge in (("recording", indicator), ("monitoring", notice), ("consent", consent)):
            if await badge.is_visible():
                assert not overlap(header, await box(badge)), (what, name, header, await box(badge))
        await assert_in_window(
            shopper, end=shopper.locator("#end-button"), mute=shopper.locator("#mute-button")
        )

    await header_clear("asking consent")
    await assert_axe_clean(shopper, "call with badges, phone en")
    await shot(shopper, "call-consent-phone")
    await consent.get_by_role("button", name="Allow recording").click()
    await expect(consent).to_be_hidden()
    await expect(indicator).to_contain_text("Recording", timeout=15_000)
    await header_clear("recording")
    await shot(shopper, "call-badges-phone")
    await shopper.locator("[data-lang-switch] button[data-lang=ja]").click()
    await expect(shopper.locator("html")).to_have_attribute("lang", "ja")
    await header_clear("recording ja")
    await assert_axe_clean(shopper, "call with badges, phone ja")
    await shot(shopper, "call-badges-phone-ja")
    await shopper.locator("[data-lang-switch] button[data-lang=en]").click()
    await shopper.set_viewport_size({"width": 1280, "height": 800})
    await header_clear("recording, desktop")
    await shot(shopper, "call-badges-desktop")

    # The device check while waiting (the advisor is busy): Join is in view, in both languages.
    for lang in ("en", "ja"):
        locale = "ja-JP" if lang == "ja" else "en-US"
        waiting: Page = await new_page(server + "/widget/", locale=locale, **PHONE)
        await waiting.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
        await waiting.wait_for_load_state("networkidle")
        await waiting.locator("#talk-video").click()
        await waiting.locator("#queue-check").click()
        await expect(waiting.locator("#view-preview")).to_be_visible(timeout=10_000)
        await wait_until(lambda w=waiting: w.evaluate(PREVIEW_PLAYING))
        await expect(waiting.locator("html")).to_have_attribute("lang", lang)
        await assert_in_window(
            waiting, join=waiting.locator("#join-button"), video=waiting.locator("#preview-video")
        )
        await assert_axe_clean(waiting, f"call preview phone {lang}")
        await shot(waiting, "call-preview-phone" if lang == "en" else "call-preview-phone-ja")
