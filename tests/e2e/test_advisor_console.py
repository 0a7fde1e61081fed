"""The advisor console in a real browser: sign-in, presence, offers with the shopper's profile
and purchases, accepting, chatting both ways, the customer timeline, closing with notes, a
video call against a shopper's browser, both languages and axe.

The shopper is a python-socketio client (chat) or a second browser context using the shared
socket and call modules (video). Demo shoppers are linked by a signed shop customer id, so
these tests run with LIVEDESK_SHOP_SIGNING_SECRET set.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect
from pydantic import SecretStr

from livedesk.demo import data
from livedesk.demo.plan import PlannedShopper, build_plan, demo_anchor
from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.identity import sign_shop_customer_id
from livedesk.kit.clock import utcnow
from livedesk.settings import Settings
from tests.conftest import SocketClient
from tests.e2e.conftest import axe_violations, screenshot, wait_until

SHOP_SECRET = "e2e-shop-signing-secret"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")
# Generous for a slow machine, still the same code path as the 30 s default.
OFFER_TIMEOUT = 90.0


@pytest.fixture
async def e2e_settings(e2e_settings: Settings) -> Settings:
    return e2e_settings.model_copy(
        update={"shop_signing_secret": SecretStr(SHOP_SECRET), "offer_timeout_seconds": OFFER_TIMEOUT}
    )


def demo_shoppers() -> list[PlannedShopper]:
    """The seeded demo shoppers with at least two orders (names and orders are fixed by the seed)."""
    plan = build_plan(demo_anchor(utcnow()))
    return [s for s in plan.shoppers if len(s.orders) >= 2]


async def visitor_token(server: str, shopper: PlannedShopper) -> dict[str, Any]:
    body = {
        "shop_customer_id": shopper.shop_customer_id,
        "shop_signature": sign_shop_customer_id(SHOP_SECRET, shopper.shop_customer_id),
    }
    async with aiohttp.ClientSession() as http, http.post(f"{server}/api/v1/visitors", json=body) as response:
        assert response.status == 201, await response.text()
        result: dict[str, Any] = await response.json()
    assert result["linked"] is True
    return result


async def shopper_socket(server: str, shopper: PlannedShopper) -> SocketClient:
    visit = await visitor_token(server, shopper)
    sock = SocketClient("/shopper")
    await sock.connect(server, auth={"token": visit["token"]})
    return sock


async def sign_in(page: Page, email: str = ADVISOR.email) -> None:
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    await page.fill("#email", email)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#console")).to_be_visible()
    await expect(page.locator("#presence-state")).to_have_attribute("data-status", "available")


def keep(path: Path, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / f"{name}.png")


async def shot(page: Page, name: str) -> None:
    keep(await screenshot(page, name), name)


async def assert_axe_clean(page: Page) -> None:
    violations = await axe_violations(page)
    assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]


async def switch_language(page: Page, lang: str) -> None:
    await page.click(f"[data-lang-switch] button[data-lang={lang}]")
    await expect(page.locator("html")).to_have_attribute("lang", lang)


async def shopper_says(sock: SocketClient, consultation_id: str, body: str) -> None:
    message = {
        "consultation_id": consultation_id,
        "client_id": uuid.uuid4().hex,
        "kind": "text",
        "body": body,
    }
    await sock.ok("chat.send", message)


def offer_card(page: Page, consultation_id: str) -> Any:
    return page.locator(f'.offer[data-consultation-id="{consultation_id}"]')


def workspace(page: Page, consultation_id: str) -> Any:
    return page.locator(f'.workspace[data-consultation-id="{consultation_id}"]')


async def test_chat_consultation_from_offer_to_closing_notes(server: str, new_page: Any) -> None:
    shopper = demo_shoppers()[0]
    page = await new_page(server + "/staff/")
    await sign_in(page)
    await expect(page.locator("#console-name")).to_have_text(ADVISOR.display_name)
    await expect(page.locator("#presence-select")).to_have_value("available")
    await expect(page.locator("#offers-empty")).to_be_visible()
    await assert_axe_clean(page)

    sock = await shopper_socket(server, shopper)
    try:
        joined = await sock.ok("queue.join", {"kind": "chat", "skills": ["skincare"], "language": "ja"})
        cid = joined["id"]

        # The offer: the shopper's name, what they want, latest purchases, a countdown.
        card = offer_card(page, cid)
        await expect(card).to_be_visible(timeout=10_000)
        await expect(card.locator(".offer-name")).to_have_text(shopper.display_name)
        await expect(card.locator(".kind-badge")).to_have_text("Chat")
        await expect(card).to_contain_text(shopper.email)
        await expect(card).to_contain_text("Skincare")
        newest = sorted(shopper.orders, key=lambda o: o.ordered_at)[-1]
        await expect(card).to_contain_text(newest.external_id)
        await expect(card).to_contain_text(f"¥{newest.total:,}")
        await expect(card.locator(".purchase-list > li")).to_have_count(min(3, len(shopper.orders)))
        await expect(card.locator(".offer-countdown")).to_contain_text("s left")
        await expect(card).to_contain_text("Any advisor")
        await expect(page.locator("#offer-alert")).to_contain_text(shopper.display_name)
        await expect(page.locator("#offer-alert")).to_have_attribute("role", "alert")
        await assert_axe_clean(page)
        await shot(page, "console-offer-desktop")

        await card.get_by_role("button", name="Accept").click()
        await expect(card).to_have_count(0)
        ws = workspace(page, cid)
        await expect(ws).to_be_visible()
        await expect(ws.locator(".ws-title")).to_have_text(shopper.display_name)
        await expect(page.get_by_role("tab", name=shopper.display_name)).to_have_attribute(
            "aria-selected", "true"
        )
        await sock.wait_for("consultation.updated", lambda c: c["id"] == cid and c["status"] == "active")

        # Shopper → advisor, with the typing indicator first.
        await sock.ok("chat.typing", {"consultation_id": cid, "typing": True})
        await expect(ws.locator(".chat-typing")).to_have_text("The shopper is typing…")
        await shopper_says(sock, cid, "乾燥肌に合う美容液は？")
        await expect(ws.locator(".msg-shopper .msg-body")).to_have_text("乾燥肌に合う美容液は？")
        await expect(ws.locator(".chat-typing")).to_have_text("")
        # The advisor sees it, so the shopper hears it was read.
        read = await sock.wait_for(
            "chat.read", lambda e: e["consultation_id"] == cid and e["reader"] == "staff"
        )
        assert read["seq"] >= 1

        # Advisor → shopper: Enter sends.
        box = ws.get_by_label("Message to the shopper")
        await box.fill("Sakura Glow Serum suits dry skin well.")
        await box.press("Enter")
        message = await sock.wait_for(
            "chat.message", lambda m: m["sender"] == "staff" and m["body"].startswith("Sakura Glow")
        )
        assert message["consultation_id"] == cid
        mine = ws.locator(".msg-mine").filter(has_text="Sakura Glow Serum suits")
        await expect(mine.locator(".msg-state")).to_have_text("Sent")
        await sock.ok("chat.read", {"consultation_id": cid, "seq": message["seq"]})
        await expect(mine.locator(".msg-state")).to_have_text("Read")

        # A product card from the picker.
        await ws.get_by_role("combobox", name="Product").fill("HB-SK-001")
        await ws.get_by_role("option", name=re.compile("HB-SK-001")).click()
        await ws.get_by_role("button", name="Send product card").click()
        product = await sock.wait_for("chat.message", lambda m: m["kind"] == "product")
        assert product["data"]["sku"] == "HB-SK-001"
        assert product["data"]["price_minor"] == 6600
        assert product["data"]["currency"] == "JPY"
        await expect(ws.locator(".msg-mine .product-card")).to_contain_text("¥6,600")

        # The customer panel: profile and the timeline with the shop orders, newest first.
        await expect(ws.locator(".profile")).to_contain_text(shopper.email)
        await expect(ws.locator(".timeline .tl-item").first).to_be_visible()
        await ws.get_by_label("Show").select_option("shop.order")
        await expect(ws.locator(".tl-shop-order")).to_have_count(min(10, len(shopper.orders)))
        await expect(ws.locator(".tl-shop-order").first).to_contain_text(newest.external_id)
        await ws.get_by_label("Show").select_option("")
        await expect(ws.locator(".timeline .tl-item").first).to_be_visible()
        shown = await ws.locator(".timeline .tl-item").count()
        await ws.get_by_role("button", name="Load more").click()
        await wait_until(lambda: _more(ws, shown))
        await assert_axe_clean(page)
        await page.evaluate("window.scrollTo(0, 0)")
        await shot(page, "console-chat-desktop")

        # Close with notes: the consultation leaves the console; the timeline keeps the notes.
        notes = "Recommended Sakura Glow Serum for dry skin; follow up in two weeks."
        await ws.get_by_label("Notes for the customer history").fill(notes)
        await ws.get_by_role("button", name="Close with notes").click()
        await expect(ws).to_have_count(0)
        await expect(page.locator("#ws-empty")).to_be_visible()
        closed = await sock.wait_for(
            "consultation.updated", lambda c: c["id"] == cid and c["status"] == "closed"
        )
        assert closed["closed_at"]
        timeline = await page.evaluate(
            """async (id) => {
                const r = await fetch(`/api/v1/shoppers/${id}/timeline?kind=consultation&limit=5`);
                return await r.json();
            }""",
            joined["shopper_id"],
        )
        closing = [
            e for e in timeline["events"] if e["consultation_id"] == cid and e["data"]["status"] == "closed"
        ]
        assert len(closing) == 1
        assert closing[0]["data"]["notes"] == notes
    finally:
        await sock.close()


async def _more(ws: Any, than: int) -> bool:
    return bool(await ws.locator(".timeline .tl-item").count() > than)


SHOPPER_PAGE_SETUP = """async (token) => {
    const { LiveSocket } = await import("/shared/socket.js");
    const { CallEngine } = await import("/shared/call.js");
    const socket = LiveSocket.shopper(token);
    const s = { socket, CallEngine, updates: [], engine: null, video: null };
    window.shopper = s;
    socket.on("consultation.updated", (c) => s.updates.push(c));
    const c = await socket.call("queue.join", { kind: "video" });
    return c.id;
}"""

SHOPPER_START_CALL = """async (cid) => {
    const s = window.shopper;
    const video = document.createElement("video");
    video.autoplay = true;
    video.muted = true;
    video.playsInline = true;
    document.body.append(video);
    s.video = video;
    s.engine = new s.CallEngine({ socket: s.socket, consultationId: cid, polite: true });
    s.engine.addEventListener("remotestream", (e) => { video.srcObject = e.detail; });
    await s.engine.start({ audio: true, video: true });
}"""


async def remote_video_width(page: Page, consultation_id: str) -> int:
    width: int = await page.evaluate(
        "(id) => document.querySelector(`[data-consultation-id='${id}'] .call-remote`)?.videoWidth ?? 0",
        consultation_id,
    )
    return width


async def test_video_consultation_runs_the_call_in_the_console(server: str, new_page: Any) -> None:
    shopper = demo_shoppers()[1]
    page = await new_page(server + "/staff/")
    await sign_in(page)
    visit = await visitor_token(server, shopper)
    shop = await new_page(server + "/")
    cid = await shop.evaluate(SHOPPER_PAGE_SETUP, visit["token"])

    card = offer_card(page, cid)
    await expect(card).to_be_visible(timeout=10_000)
    await expect(card.locator(".kind-badge")).to_have_text("Video")
    await expect(card.locator(".offer-name")).to_have_text(shopper.display_name)
    await card.get_by_role("button", name="Accept").click()
    ws = workspace(page, cid)
    await expect(ws).to_be_visible()
    await wait_until(lambda: shop.evaluate("window.shopper.updates.some((c) => c.status === 'active')"))
    await shop.evaluate(SHOPPER_START_CALL, cid)

    # Media both ways: the console plays the shopper's camera, the shopper gets the advisor's.
    await wait_until(lambda: remote_video_width(page, cid), within=20)
    await wait_until(lambda: shop.evaluate("window.shopper.video.videoWidth > 0"), within=20)
    call = ws.locator(".call")
    await expect(call.locator(".call-state")).to_have_text("Connected")
    await expect(call.locator(".call-placeholder")).to_be_hidden()
    await expect(call.locator(".call-quality")).to_contain_text("Connection: good", timeout=10_000)
    await expect(call.locator(".call-timer")).not_to_have_text("0:00", timeout=5_000)
    await expect(page.locator("#presence-state")).to_have_attribute("data-status", "busy")
    await expect(call.locator(".call-self")).to_be_visible()
    await expect(ws.get_by_role("button", name="Start video call")).to_be_hidden()
    await assert_axe_clean(page)
    await page.evaluate("window.scrollTo(0, 0)")
    await shot(page, "console-call-desktop")

    # A reload mid-call resumes it (the console restarts its side; the shopper's keeps going).
    await page.reload()
    ws = workspace(page, cid)
    call = ws.locator(".call")
    await expect(call.locator(".call-state")).to_have_text("Connected", timeout=20_000)
    await wait_until(lambda: remote_video_width(page, cid), within=20)

    controls = call.get_by_role("group", name="Call controls")
    mute = controls.get_by_role("button", name="Mute microphone")
    await mute.click()
    await expect(mute).to_have_attribute("aria-pressed", "true")
    await mute.click()
    await expect(mute).to_have_attribute("aria-pressed", "false")
    camera = controls.get_by_role("button", name="Camera off")
    await camera.click()
    await expect(camera).to_have_attribute("aria-pressed", "true")
    await expect(call.locator(".call-self-wrap")).to_be_hidden()
    await camera.click()
    await expect(call.locator(".call-self-wrap")).to_be_visible()

    # Video → voice → video: the consultation's kind follows (call.escalate), the call goes on.
    await controls.get_by_role("button", name="Switch to voice").click()
    await wait_until(lambda: shop.evaluate("window.shopper.updates.at(-1).kind === 'voice'"))
    await expect(ws.locator(".ws-heading .kind-badge")).to_have_text("Voice")
    await expect(call.locator(".call-placeholder")).to_have_text("Voice call")
    await expect(controls.get_by_role("button", name="Camera off")).to_be_disabled()
    await controls.get_by_role("button", name="Switch to video").click()
    await wait_until(lambda: shop.evaluate("window.shopper.updates.at(-1).kind === 'video'"))
    await expect(ws.locator(".ws-heading .kind-badge")).to_have_text("Video")
    await expect(call.locator(".call-state")).to_have_text("Connected")

    # Japanese, with the call on screen.
    await switch_language(page, "ja")
    await expect(call.locator(".call-state")).to_have_text("接続済み")
    await assert_axe_clean(page)
    await switch_language(page, "en")

    # End → wrap-up (the shopper's engine hears the hangup), then close.
    await ws.get_by_role("button", name="End", exact=True).click()
    await expect(ws.locator(".wrapup-hint")).to_be_visible()
    await expect(ws.locator(".ws-status")).to_have_text("Ended — wrap-up")
    await expect(ws.locator(".call-slot")).to_be_hidden()
    await wait_until(lambda: shop.evaluate("window.shopper.engine.state === 'closed'"))
    await wait_until(lambda: shop.evaluate("window.shopper.updates.at(-1).status === 'wrap_up'"))
    await expect(page.locator("#presence-state")).to_have_attribute("data-status", "available")
    await ws.get_by_label("Notes for the customer history").fill("Showed two serums on camera.")
    await ws.get_by_role("button", name="Close with notes").click()
    await expect(ws).to_have_count(0)


async def test_presence_away_holds_offers_until_available(server: str, new_page: Any) -> None:
    shopper = demo_shoppers()[2]
    page = await new_page(server + "/staff/")
    await sign_in(page)
    await page.get_by_label("Status").select_option("away")
    await expect(page.locator("#presence-state")).to_have_attribute("data-status", "away")
    await expect(page.locator("#presence-state")).to_contain_text("Away since")
    await expect(page.locator("#offers-empty")).to_contain_text("You are away")

    sock = await shopper_socket(server, shopper)
    try:
        joined = await sock.ok("queue.join", {"kind": "voice"})
        cid = joined["id"]
        position = await sock.wait_for("queue.position", lambda p: p["consultation_id"] == cid)
        assert position["position"] >= 1
        await expect(offer_card(page, cid)).to_have_count(0)

        # Back to available: routing offers the waiting shopper to us.
        await page.get_by_label("Status").select_option("available")
        await expect(page.locator("#presence-state")).to_have_attribute("data-status", "available")
        card = offer_card(page, cid)
        await expect(card).to_be_visible(timeout=10_000)
        await expect(card.locator(".kind-badge")).to_have_text("Voice")

        # Presence survives a reload; so does the offer (from consultation.current).
        await page.reload()
        await expect(page.locator("#console")).to_be_visible()
        await expect(page.locator("#presence-select")).to_have_value("available")
        await expect(offer_card(page, cid)).to_be_visible()
        await expect(offer_card(page, cid).locator(".offer-name")).to_have_text(shopper.display_name)

        # Declining sends it back to the queue; the card goes.
        await offer_card(page, cid).get_by_role("button", name="Decline").click()
        await expect(offer_card(page, cid)).to_have_count(0)
        await expect(page.locator("#offers-empty")).to_be_visible()

        # A shopper who leaves the queue takes their offer off the screen.
        other = await shopper_socket(server, demo_shoppers()[4])
        try:
            second = (await other.ok("queue.join", {"kind": "chat"}))["id"]
            await expect(offer_card(page, second)).to_be_visible(timeout=10_000)
            await other.ok("queue.leave", {"consultation_id": second})
            await expect(offer_card(page, second)).to_have_count(0)
            await expect(page.locator("#announcer")).to_contain_text("left the queue")
        finally:
            await other.close()

        await page.get_by_label("Status").select_option("away")
        await expect(page.locator("#presence-state")).to_have_attribute("data-status", "away")

        # Signing out ends the console: back to the sign-in form.
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.locator("#signin-form")).to_be_visible()
        await expect(page.locator("#signin-notice")).to_have_text("You have signed out.")
        await expect(page.locator("#console")).to_be_hidden()
    finally:
        await sock.close()


async def test_phone_width_in_japanese_and_reload_restores_the_chat(server: str, new_page: Any) -> None:
    shopper = demo_shoppers()[3]
    page = await new_page(server + "/staff/", width=390, height=844, locale="ja-JP")
    await sign_in(page)
    await expect(page.locator("html")).to_have_attribute("lang", "ja")
    await expect(page.locator("#presence-state")).to_contain_text("対応可能")
    await assert_axe_clean(page)

    sock = await shopper_socket(server, shopper)
    try:
        joined = await sock.ok("queue.join", {"kind": "chat"})
        cid = joined["id"]
        card = offer_card(page, cid)
        await expect(card).to_be_visible(timeout=10_000)
        await expect(card.get_by_role("button", name="応答する")).to_be_visible()
        await assert_axe_clean(page)
        await card.get_by_role("button", name="応答する").click()
        ws = workspace(page, cid)
        await expect(ws).to_be_visible()
        await shopper_says(sock, cid, "サイズの相談です")
        await expect(ws.locator(".msg-shopper .msg-body")).to_have_text("サイズの相談です")
        await ws.get_by_label("お客様へのメッセージ").fill("はい、承ります。")
        await ws.get_by_role("button", name="送信", exact=True).click()
        await sock.wait_for("chat.message", lambda m: m["body"] == "はい、承ります。")
        # Nothing wider than the phone.
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await assert_axe_clean(page)
        await page.evaluate("window.scrollTo(0, 0)")
        await shot(page, "console-phone")

        # A reload brings the consultation and its whole chat back.
        await page.reload()
        ws = workspace(page, cid)
        await expect(ws).to_be_visible()
        await expect(ws.locator(".msg-shopper .msg-body")).to_have_text("サイズの相談です")
        await expect(ws.locator(".msg-mine .msg-body")).to_have_text("はい、承ります。")
        await switch_language(page, "en")
        await expect(ws.get_by_role("button", name="Close with notes")).to_be_visible()
        await assert_axe_clean(page)

        # The shopper ends it: wrap-up in the console, then closed without notes.
        await sock.ok("consultation.end", {"consultation_id": cid})
        await expect(ws.locator(".wrapup-hint")).to_be_visible()
        await ws.get_by_role("button", name="Close with notes").click()
        await expect(ws).to_have_count(0)
    finally:
        await sock.close()


def tiny_png() -> bytes:
    """A valid 1×1 PNG (the upload checks the content, not the name)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x80\x80")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


async def test_two_chats_side_by_side_in_tabs(server: str, new_page: Any) -> None:
    first, second = demo_shoppers()[5:7]
    page = await new_page(server + "/staff/")
    await sign_in(page)
    socks = [await shopper_socket(server, first), await shopper_socket(server, second)]
    try:
        ids = []
        for sock in socks:
            cid = (await sock.ok("queue.join", {"kind": "chat"}))["id"]
            card = offer_card(page, cid)
            await expect(card).to_be_visible(timeout=10_000)
            await card.get_by_role("button", name="Accept").click()
            await expect(workspace(page, cid)).to_be_attached()
            ids.append(cid)
        tabs = page.get_by_role("tab")
        await expect(tabs).to_have_count(2)
        # The one accepted last is in front; the first waits in its tab.
        first_tab = page.get_by_role("tab", name=first.display_name)
        second_tab = page.get_by_role("tab", name=second.display_name)
        await expect(second_tab).to_have_attribute("aria-selected", "true")
        await expect(workspace(page, ids[0])).to_be_hidden()

        # A message in the hidden chat: an unread badge, read once the tab is shown.
        await shopper_says(socks[0], ids[0], "Do you have this in M?")
        await expect(first_tab.locator(".ws-tab-unread")).to_have_text("1 unread")
        await second_tab.focus()
        await page.keyboard.press("ArrowLeft")
        await expect(first_tab).to_be_focused()
        await expect(first_tab).to_have_attribute("aria-selected", "true")
        await expect(workspace(page, ids[0])).to_be_visible()
        await expect(first_tab.locator(".ws-tab-unread")).to_be_hidden()
        await socks[0].wait_for(
            "chat.read", lambda e: e["consultation_id"] == ids[0] and e["reader"] == "staff"
        )

        # An image from the advisor: uploaded, then sent as a chat message.
        ws = workspace(page, ids[0])
        await ws.get_by_label("Send an image or PDF").set_input_files(
            {"name": "swatch.png", "mimeType": "image/png", "buffer": tiny_png()}
        )
        image = await socks[0].wait_for("chat.message", lambda m: m["kind"] == "image")
        assert image["data"]["filename"] == "swatch.png"
        await expect(ws.locator(".msg-mine .msg-image img")).to_be_visible()

        # One call at a time: a chat becomes a video call; the other chat cannot start one.
        await ws.get_by_role("button", name="Start video call").click()
        await socks[0].wait_for("consultation.updated", lambda c: c["id"] == ids[0] and c["kind"] == "video")
        await expect(ws.locator(".call")).to_be_visible()
        await second_tab.click()
        other = workspace(page, ids[1])
        await other.get_by_role("button", name="Start video call").click()
        await expect(other.locator("[data-part=ws-error]")).to_have_text(
            "You are already in a call. End it before starting another."
        )
        await assert_axe_clean(page)
    finally:
        for sock in socks:
            await sock.close()
