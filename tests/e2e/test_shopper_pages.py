"""The shopper's side in a real browser: the widget on the demo shop, /widget/ (advisor picker,
queue, cancel), /call/ (device check, blocked camera, a real call with an advisor, chat), their
accessibility in both languages and at phone width, and the screenshots in docs/screenshots/.

The advisor is simulated in a second browser context: signed in as a demo advisor, it drives
the shared modules (/shared/socket.js, /shared/call.js) through page.evaluate, as the console
would.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Frame, FrameLocator, Page, ViewportSize, expect
from pydantic import SecretStr

from livedesk.identity import sign_shop_customer_id
from livedesk.settings import Settings
from tests.e2e.conftest import axe_violations, screenshot, wait_until

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
# English pages show the advisors' names in Latin letters; Japanese pages in Japanese.
DEMO_ADVISORS = [
    "Sakura Tanaka",
    "Misaki Sato",
    "Hina Suzuki",
    "Emma Clarke",
    "Ren Takahashi",
    "Oliver Hughes",
]
DEMO_ADVISORS_JA = ["田中 さくら", "佐藤 美咲", "鈴木 陽菜", "Emma Clarke", "高橋 蓮", "Oliver Hughes"]
ADVISOR_EMAIL = "sakura.tanaka@hanami.example"
PREVIEW_PLAYING = "document.getElementById('preview-video').videoWidth > 0"
ANY_PLACE = re.compile(r"^\d+$")


SHOP_SECRET = "e2e-shop-signing-secret"


@pytest.fixture
async def e2e_settings(e2e_settings: Settings) -> Settings:
    """The e2e app, with a shop signing secret so signed customer ids can be tried."""
    return e2e_settings.model_copy(update={"shop_signing_secret": SecretStr(SHOP_SECRET)})


async def shot(page: Page, name: str) -> None:
    """A screenshot in tests/e2e/artifacts/, copied to docs/screenshots/ for the docs."""
    path = await screenshot(page, name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / path.name)


async def i18n_ready(page: Page | Frame) -> None:
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")


async def open_widget(new_page: Any, server: str, **options: Any) -> Page:
    page: Page = await new_page(server + "/widget/", **options)
    await i18n_ready(page)
    await expect(page.locator("#view-start")).to_be_visible()
    await expect(page.locator("#advisor-list .advisor-item")).to_have_count(len(DEMO_ADVISORS) + 1)
    return page


async def join_queue(page: Page, kind: str = "video", position: str | re.Pattern[str] = "1") -> str:
    """Talk now (anyone); returns the consultation id once the queue shows the place."""
    await page.locator(f"#talk-{kind}").click()
    await expect(page.locator("#view-queue")).to_be_visible()
    await expect(page.locator("#queue-position")).to_have_text(position, timeout=10_000)
    href = await page.locator("#queue-check").get_attribute("href")
    assert href is not None
    assert href.startswith("/call/?c=")
    return href.removeprefix("/call/?c=")


async def set_language(page: Page | Frame, lang: str) -> None:
    await page.locator(f"[data-lang-switch] button[data-lang='{lang}']").first.click()
    await page.wait_for_function(f"document.documentElement.lang === '{lang}'")


async def assert_accessible(page: Page, what: str) -> None:
    violations = await axe_violations(page)
    summary = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
    assert violations == [], f"{what}: {summary}"


# ------------------------------------------------------------------ the embed snippet


async def test_launcher_words_match_the_widget_tables() -> None:
    """widget.js carries its few words itself (it runs on the shop's origin); they must be the
    ones in /widget/i18n."""
    source = (ROOT / "web" / "widget.js").read_text()
    for lang in ("en", "ja"):
        table = json.loads((ROOT / "web" / "widget" / "i18n" / f"{lang}.json").read_text())
        block = re.search(rf"\n    {lang}: \{{(.*?)\n    \}}", source, re.S)
        assert block, lang
        pairs = dict(re.findall(r'"(launcher\.[a-z_]+)": "([^"]*)"', block.group(1)))
        expected = {k: v for k, v in table.items() if k.startswith("launcher.")}
        assert pairs == expected, lang


async def test_demo_shop_launcher_opens_the_widget_in_a_panel(server: str, new_page: Any) -> None:
    page: Page = await new_page(server + "/demo/shop")
    await i18n_ready(page)
    launcher = page.locator(".ld-launcher")
    await expect(launcher).to_be_visible()
    await expect(launcher).to_have_text("Talk to an advisor")
    await expect(launcher).to_have_attribute("aria-expanded", "false")
    # The inline button in the shop's #livedesk-widget place, and nothing left on window.
    await expect(page.locator("#livedesk-widget .ld-inline")).to_be_visible()
    leaked = await page.evaluate("() => Object.keys(window).filter(k => /livedesk|^ld|widget/i.test(k))")
    assert leaked == []

    await launcher.click()
    panel = page.locator(".ld-panel")
    await expect(panel).to_be_visible()
    await expect(launcher).to_have_attribute("aria-expanded", "true")
    src = await page.locator(".ld-frame").get_attribute("src")
    assert src is not None
    assert src.startswith(server + "/widget/#")
    assert "?" not in src  # the fragment never reaches a server log
    frame: FrameLocator = page.frame_locator(".ld-frame")
    await expect(frame.locator("#view-start")).to_be_visible(timeout=10_000)
    await expect(frame.locator("#advisor-list .advisor-item")).to_have_count(len(DEMO_ADVISORS) + 1)
    # The fragment (language, shop id) is read and then taken out of the address.
    await shot(page, "widget-panel-desktop")
    widget = next(f for f in page.frames if f.url.startswith(server + "/widget/"))
    assert await widget.evaluate("location.hash") == ""
    assert await widget.evaluate("document.documentElement.classList.contains('embedded')")

    # Escape inside the frame closes the panel; focus goes back to the launcher.
    await frame.locator("#talk-video").focus()
    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    assert (
        await page.evaluate(
            "() => document.querySelector('[data-livedesk-widget-host]').shadowRoot.activeElement?.className"
        )
        == "ld-launcher"
    )

    # The shop's language switch reaches the launcher and the widget inside.
    await page.locator(".shop-tools [data-lang='ja']").click()
    await expect(launcher).to_have_text("アドバイザーに相談")
    await launcher.click()
    await expect(frame.locator("#start-title")).to_have_text("今すぐアドバイザーに相談")
    await page.locator(".ld-close").click()
    await expect(panel).to_be_hidden()


async def test_widget_panel_is_full_screen_on_a_phone(server: str, new_page: Any) -> None:
    page: Page = await new_page(server + "/demo/shop", **PHONE)
    await i18n_ready(page)
    await page.locator(".ld-launcher").click()
    box = await page.locator(".ld-panel").bounding_box()
    assert box is not None
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, PHONE["width"], PHONE["height"])
    await expect(page.frame_locator(".ld-frame").locator("#view-start")).to_be_visible(timeout=10_000)
    await expect(page.locator(".ld-close")).to_be_visible()


async def test_pages_keep_to_their_content_security_policy(server: str, browser: Browser) -> None:
    """The other tests bypass CSP (to inject axe); here it is enforced: no inline script or
    style anywhere in the launcher, the widget or the call page."""
    context = await browser.new_context(permissions=["camera", "microphone"], viewport=DESKTOP)
    try:
        page = await context.new_page()
        refused: list[str] = []
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda e: refused.append(str(e)))
        await page.goto(server + "/demo/shop")
        await page.locator(".ld-launcher").click()
        frame = page.frame_locator(".ld-frame")
        await expect(frame.locator("#view-start")).to_be_visible(timeout=10_000)
        await frame.locator("#talk-video").click()
        await expect(frame.locator("#queue-position")).to_have_text("1", timeout=10_000)
        await frame.locator("#queue-check").click()
        await expect(frame.locator("#view-preview")).to_be_visible(timeout=10_000)
        await expect(frame.locator("#mic-meter-fill")).to_be_attached()
        launcher_css = await page.evaluate(
            "() => getComputedStyle(document.querySelector('[data-livedesk-widget-host]')"
            ".shadowRoot.querySelector('.ld-launcher')).position"
        )
        assert launcher_css == "fixed"
        assert refused == []
    finally:
        await context.close()


# ------------------------------------------------------------------ /widget/


async def test_widget_lists_the_demo_advisors_offline(server: str, new_page: Any) -> None:
    page = await open_widget(new_page, server)
    items = page.locator("#advisor-list .advisor-item:not(.advisor-item-anyone)")
    names = await items.locator(".advisor-name").all_inner_texts()
    assert sorted(names) == sorted(DEMO_ADVISORS)
    assert set(await items.locator(".status-text").all_inner_texts()) == {"Offline"}
    assert await items.locator("img.advisor-photo").count() == len(DEMO_ADVISORS)
    # "Anyone" is the default choice; the skills and languages are in words.
    await expect(page.locator("#advisor-anyone")).to_be_checked()
    await expect(items.first.locator(".advisor-meta").first).not_to_be_empty()
    await expect(page.locator("#booking-link")).to_have_attribute("href", "#booking")
    await shot(page, "widget-desktop")

    phone = await open_widget(new_page, server, **PHONE)
    await shot(phone, "widget-phone")

    # In Japanese the same advisors carry their Japanese names.
    await set_language(page, "ja")
    await expect(items.locator(".advisor-name")).to_have_count(len(DEMO_ADVISORS_JA))
    await page.wait_for_function("document.querySelector('.advisor-name')?.textContent !== ''")
    names_ja = await items.locator(".advisor-name").all_inner_texts()
    assert sorted(names_ja) == sorted(DEMO_ADVISORS_JA)


async def test_advisor_status_is_live(server: str, new_page: Any, demo_password: str) -> None:
    """No presence events reach shoppers: the picker polls (every 15 s) and puts whoever can
    talk now first."""
    page = await open_widget(new_page, server)
    sakura = page.locator(".advisor-option", has_text="Sakura Tanaka")
    await expect(sakura.locator(".status-text")).to_have_text("Offline")
    advisor: Page = await new_page(server + "/")
    await advisor.evaluate(ADVISOR_SETUP, {"email": ADVISOR_EMAIL, "password": demo_password})
    await expect(sakura.locator(".status-text")).to_have_text("Available", timeout=20_000)
    first = page.locator("#advisor-list .advisor-item:not(.advisor-item-anyone)").first
    await expect(first.locator(".advisor-name")).to_have_text("Sakura Tanaka")
    await expect(page.locator(".advisor-item-anyone .advisor-meta")).to_contain_text("1 available now")


async def test_talk_now_queues_with_place_and_wait_then_cancel(server: str, new_page: Any) -> None:
    page = await open_widget(new_page, server, **PHONE)
    await join_queue(page, "video")
    await expect(page.locator("#queue-position-label")).to_have_text("You are number 1 in the queue.")
    await expect(page.locator("#queue-wait")).to_contain_text("Estimated wait")
    await expect(page.locator("#queue-online")).to_contain_text("No advisor is online")
    await expect(page.locator("#queue-live")).to_have_attribute("aria-live", "polite")
    await expect(page.locator("#queue-title")).to_be_focused()
    await shot(page, "widget-queue-phone")

    # A reload keeps the place (the token lives in sessionStorage).
    await page.reload()
    await expect(page.locator("#view-queue")).to_be_visible(timeout=10_000)
    await expect(page.locator("#queue-position")).to_have_text("1")

    await page.locator("#queue-cancel").click()
    await expect(page.locator("#view-start")).to_be_visible()
    await expect(page.locator("#start-notice")).to_contain_text("You left the queue")
    # Left for good: a reload shows the picker again.
    await page.reload()
    await expect(page.locator("#view-start")).to_be_visible(timeout=10_000)


async def test_nominated_advisor_unavailable_asks_wait_or_anyone(server: str, new_page: Any) -> None:
    page = await open_widget(new_page, server)
    option = page.locator(".advisor-option", has_text="Emma Clarke")
    await option.click()
    await page.locator("#talk-voice").click()
    await expect(page.locator("#view-ask")).to_be_visible()
    await expect(page.locator("#ask-title")).to_have_text("Emma Clarke can't take your call right now")
    await expect(page.locator("#ask-text")).to_contain_text("Offline")
    await page.locator("#ask-wait").click()
    await expect(page.locator("#view-queue")).to_be_visible()
    await expect(page.locator("#queue-nominee-text")).to_contain_text("waiting for Emma Clarke")
    await page.locator("#queue-anyone").click()
    await expect(page.locator("#queue-nominee")).to_be_hidden()
    await page.locator("#queue-cancel").click()
    await expect(page.locator("#view-start")).to_be_visible()


async def test_booking_link_leads_to_the_booking_page(server: str, new_page: Any) -> None:
    page = await open_widget(new_page, server)
    await page.locator("#booking-link").click()
    await expect(page.locator("#view-booking")).to_be_visible()
    await expect(page.locator("#booking-open")).to_have_attribute("href", "/booking/")
    await page.locator("#booking-back").click()
    await expect(page.locator("#view-start")).to_be_visible()


async def test_signed_shop_customer_id_links_the_visit(server: str, new_page: Any) -> None:
    """What the launcher passes in the fragment: a good signature links the visit to the shop
    customer; a bad one still lets the shopper in, as a guest."""
    signature = sign_shop_customer_id(SHOP_SECRET, "C-E2E-1")
    page: Page = await new_page(f"{server}/widget/#embed=1&lang=ja&scid=C-E2E-1&ssig={signature}")
    await expect(page.locator("#view-start")).to_be_visible(timeout=10_000)
    visitor = await page.evaluate("JSON.parse(sessionStorage.getItem('livedesk.visitor'))")
    assert visitor["linked"] is True
    assert await page.evaluate("location.hash") == ""
    assert await page.evaluate("document.documentElement.lang") == "ja"

    guest: Page = await new_page(f"{server}/widget/#embed=1&scid=C-E2E-1&ssig=123.bad")
    await expect(guest.locator("#view-start")).to_be_visible(timeout=10_000)
    visitor = await guest.evaluate("JSON.parse(sessionStorage.getItem('livedesk.visitor'))")
    assert visitor["linked"] is False
    assert (
        visitor["shopper_id"]
        != (await page.evaluate("JSON.parse(sessionStorage.getItem('livedesk.visitor'))"))["shopper_id"]
    )


# ------------------------------------------------------------------ /call/


async def test_call_page_without_a_visit_says_where_to_go(server: str, new_page: Any) -> None:
    page: Page = await new_page(f"{server}/call/?c={uuid.uuid4()}")
    await i18n_ready(page)
    await expect(page.locator("#view-missing")).to_be_visible()
    await expect(page.locator("#missing-text")).to_contain_text("without your visit")
    await expect(page.locator("#view-missing a")).to_have_attribute("href", "/widget/")


async def test_call_page_device_check_while_waiting(server: str, new_page: Any) -> None:
    for size, name in ((DESKTOP, "call-preview-desktop"), (PHONE, "call-preview-phone")):
        page = await open_widget(new_page, server, **size)
        await join_queue(page, "video", ANY_PLACE)
        await page.locator("#queue-check").click()
        await expect(page.locator("#view-preview")).to_be_visible(timeout=10_000)
        await wait_until(lambda page=page: page.evaluate(PREVIEW_PLAYING))
        await expect(page.locator("#camera-select option")).not_to_have_count(0)
        await expect(page.locator("#mic-select option")).not_to_have_count(0)
        await expect(page.locator("#mic-meter")).to_have_attribute("role", "meter")
        await expect(page.locator("#join-button")).to_be_disabled()
        # The place the widget saw comes along (the server only sends it when it changes).
        await expect(page.locator("#preview-status")).to_contain_text(re.compile(r"number \d+ in the queue"))
        await shot(page, name)


async def test_blocked_camera_shows_help_with_retry_and_chat_only(server: str, new_page: Any) -> None:
    page = await open_widget(new_page, server, media=False, **PHONE)
    await join_queue(page, "video")
    await page.locator("#queue-check").click()
    await expect(page.locator("#view-denied")).to_be_visible(timeout=10_000)
    await expect(page.locator("#denied-title")).to_have_text("Allow your camera and microphone")
    await expect(page.locator("#denied-retry")).to_be_visible()
    await expect(page.locator("#denied-chat-only")).to_be_visible()
    await shot(page, "call-denied-phone")
    # Still blocked: retrying lands on the help again (it is not a dead end).
    await page.locator("#denied-retry").click()
    await expect(page.locator("#view-denied")).to_be_visible()
    await page.locator("#denied-chat-only").click()
    await expect(page.locator("#view-call")).to_be_visible()
    await expect(page.locator("#chat-only-bar")).to_be_visible()
    # Still waiting for an advisor: the chat already takes a message; calls start later.
    await expect(page.locator("#chat-only-text")).to_contain_text("number 1 in the queue")
    await expect(page.locator("#start-video")).to_be_hidden()
    await page.locator("#chat-input").fill("I can't use my camera, sorry")
    await page.locator("#chat-input").press("Enter")
    await expect(page.locator(".msg-mine .msg-status")).to_have_text("Sent")
    await page.locator("#end-chat").click()
    await expect(page.locator("#view-ended")).to_be_visible()
    await expect(page.locator("#ended-title")).to_have_text("You left the queue")


async def test_pages_are_accessible_in_both_languages_and_on_a_phone(server: str, new_page: Any) -> None:
    for size in (DESKTOP, PHONE):
        for lang in ("en", "ja"):
            label = f"{lang} {size['width']}px"
            page = await open_widget(new_page, server, **size)
            await set_language(page, lang)
            await assert_accessible(page, f"/widget/ picker {label}")
            await screenshot(page, f"widget-{lang}-{size['width']}")
            await join_queue(page, "video", ANY_PLACE)
            await assert_accessible(page, f"/widget/ queue {label}")
            await page.locator("#queue-check").click()
            await expect(page.locator("#view-preview")).to_be_visible(timeout=10_000)
            await assert_accessible(page, f"/call/ preview {label}")
            await screenshot(page, f"call-preview-{lang}-{size['width']}")

            denied = await open_widget(new_page, server, media=False, **size)
            await set_language(denied, lang)
            await join_queue(denied, "video", ANY_PLACE)
            await denied.locator("#queue-check").click()
            await expect(denied.locator("#view-denied")).to_be_visible(timeout=10_000)
            await assert_accessible(denied, f"/call/ blocked camera {label}")
            await denied.locator("#denied-chat-only").click()
            await expect(denied.locator("#view-call")).to_be_visible()
            await assert_accessible(denied, f"/call/ chat only {label}")
            await screenshot(denied, f"call-chat-only-{lang}-{size['width']}")


# ------------------------------------------------------------------ a real call


ADVISOR_SETUP = """async ({email, password}) => {
    const login = await fetch("/api/v1/auth/login", {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({email, password}), credentials: "same-origin"});
    if (!login.ok) throw new Error("login " + login.status);
    const { LiveSocket } = await import("/shared/socket.js");
    const { CallEngine } = await import("/shared/call.js");
    const socket = LiveSocket.staff();
    const adv = { socket, CallEngine, offers: [], messages: [], typing: [] };
    window.__adv = adv;
    socket.on("offer.new", (offer) => adv.offers.push(offer));
    await socket.call("presence.set", { status: "available" });
    return true;
}"""

ADVISOR_ACCEPT = """async (id) => {
    const adv = window.__adv;
    await adv.socket.call("offer.accept", { consultation_id: id });
    const engine = new adv.CallEngine({ socket: adv.socket, consultationId: id, polite: false });
    adv.engine = engine;
    const video = document.createElement("video");
    video.id = "advisor-remote"; video.muted = true; video.autoplay = true; video.playsInline = true;
    document.body.append(video);
    engine.addEventListener("remotestream", (e) => {
        video.srcObject = e.detail;
        video.play().catch(() => {});
    });
    await engine.start({ audio: true, video: true });
    adv.chat = adv.socket.chat(id);
    adv.chat.onMessage((m) => adv.messages.push(m));
    adv.kinds = [];
    adv.socket.on("consultation.updated", (c) => adv.kinds.push(c.kind));
    return true;
}"""


async def test_advisor_accepts_a_video_call_with_chat_both_ways(
    server: str, new_page: Any, demo_password: str
) -> None:
    advisor: Page = await new_page(server + "/")
    await advisor.evaluate(ADVISOR_SETUP, {"email": ADVISOR_EMAIL, "password": demo_password})

    shopper = await open_widget(new_page, server)
    sakura = shopper.locator(".advisor-option", has_text="Sakura Tanaka")
    await expect(sakura.locator(".status-text")).to_have_text("Available")
    await shopper.locator("#talk-video").click()

    offer = await wait_until(lambda: advisor.evaluate("window.__adv.offers[0] ?? null"), within=15)
    await advisor.evaluate(ADVISOR_ACCEPT, offer["id"])

    # Accepted: the widget moves to /call/, the shopper checks the devices and joins.
    await shopper.wait_for_url(re.compile(r"/call/\?c="), timeout=15_000)
    await expect(shopper.locator("#view-preview")).to_be_visible(timeout=10_000)
    await expect(shopper.locator("#preview-status")).to_contain_text("is ready for you")
    await expect(shopper.locator("#join-button")).to_be_enabled()
    await shopper.locator("#join-button").click()
    await expect(shopper.locator("#view-call")).to_be_visible()

    async def remote_playing(page: Page, selector: str) -> bool:
        return bool(
            await page.evaluate(
                """(sel) => { const v = document.querySelector(sel);
                    return !!v && v.videoWidth > 0 && !v.paused && v.readyState >= 2; }""",
                selector,
            )
        )

    await wait_until(lambda: remote_playing(shopper, "#remote-video"), within=25)
    await wait_until(lambda: remote_playing(advisor, "#advisor-remote"), within=25)
    await expect(shopper.locator("#stage-placeholder")).to_be_hidden()
    await expect(shopper.locator("#call-timer")).to_be_visible()
    await expect(shopper.locator("#quality-text")).to_contain_text("Connection:", timeout=10_000)

    # Chat, shopper → advisor.
    await shopper.locator("#chat-input").fill("Hello, which serum suits dry skin?")
    await shopper.locator("#chat-input").press("Enter")
    await wait_until(
        lambda: advisor.evaluate(
            "window.__adv.messages.some(m => m.sender === 'shopper' && m.body.includes('dry skin'))"
        )
    )
    mine = shopper.locator(".msg-mine", has_text="dry skin")
    await expect(mine.locator(".msg-status")).to_have_text("Sent")

    # A message the server refuses (broken text: a lone surrogate) is marked "not sent" with
    # Send again / Delete, and the next message goes out behind it.
    await shopper.evaluate(
        """() => { const input = document.querySelector('#chat-input');
                   input.value = 'broken ' + String.fromCharCode(0xD800) + ' text'; }"""
    )
    await shopper.locator("#chat-input").press("Enter")
    broken = shopper.locator(".msg-failed", has_text="broken")
    await expect(broken.locator(".msg-status")).to_contain_text("Not sent", timeout=10_000)
    await expect(broken.locator(".msg-retry")).to_have_text("Send again")
    await shopper.locator("#chat-input").fill("Sorry, typo")
    await shopper.locator("#chat-input").press("Enter")
    await wait_until(lambda: advisor.evaluate("window.__adv.messages.some(m => m.body === 'Sorry, typo')"))
    await broken.locator(".msg-discard").click()
    await expect(shopper.locator(".msg-failed")).to_have_count(0)

    # Advisor → shopper: typing, a text, a product card, and read receipts.
    await advisor.evaluate("window.__adv.chat.typing(true)")
    await expect(shopper.locator("#typing")).to_contain_text("is typing")
    await advisor.evaluate(
        """async () => {
            const chat = window.__adv.chat;
            await chat.send({ kind: "text", body: "Let me show you our serum." });
            await chat.send({ kind: "product", body: "", data: {
                sku: "HB-SK-001", name: "Sakura Glow Serum", price_minor: 6600, currency: "JPY",
                image_url: "/demo/products/hb-sk-001.svg", url: "/demo/shop?sku=HB-SK-001" } });
            const last = window.__adv.messages.filter(m => m.sender === "shopper").at(-1);
            await chat.read(last.seq);
        }"""
    )
    await expect(shopper.locator(".msg-theirs", has_text="Let me show you")).to_be_visible()
    await expect(shopper.locator("#typing")).to_be_empty()
    card = shopper.locator(".product-card")
    await expect(card.locator(".product-name")).to_have_text("Sakura Glow Serum")
    await expect(card.locator(".product-price")).to_have_text("¥6,600")
    await expect(mine.locator(".msg-status")).to_have_text("Read")
    await shot(shopper, "call-incall-desktop")

    # Video → voice and back: the engine switches, the server records the kind.
    await shopper.locator("#mode-button").click()
    await wait_until(lambda: advisor.evaluate("window.__adv.kinds.at(-1) === 'voice'"))
    await expect(shopper.locator("#self-view")).to_be_hidden()
    await expect(shopper.locator("#mode-label")).to_have_text("Video")
    await shopper.locator("#mode-button").click()
    await wait_until(lambda: advisor.evaluate("window.__adv.kinds.at(-1) === 'video'"))
    await expect(shopper.locator("#self-view")).to_be_visible()
    await wait_until(lambda: shopper.evaluate("document.getElementById('self-video').videoWidth > 0"))

    # The signalling connection drops: a visible "Reconnecting…", then back by itself.
    await shopper.context.set_offline(True)
    await expect(shopper.locator("#connection-banner")).to_contain_text("Reconnecting", timeout=15_000)
    await shopper.context.set_offline(False)
    await expect(shopper.locator("#connection-banner")).to_be_hidden(timeout=20_000)
    await wait_until(lambda: remote_playing(shopper, "#remote-video"), within=25)

    # Phone width: the chat is a drawer over the video.
    await shopper.set_viewport_size(PHONE)
    await expect(shopper.locator("#chat-panel")).to_be_hidden()
    await expect(shopper.locator("#chat-toggle")).to_be_visible()
    await shot(shopper, "call-incall-phone")
    await shopper.locator("#chat-toggle").click()
    await expect(shopper.locator("#chat-panel")).to_be_visible()
    await expect(shopper.locator("#chat-input")).to_be_focused()
    await shot(shopper, "call-chat-phone")
    await shopper.keyboard.press("Escape")
    await expect(shopper.locator("#chat-panel")).to_be_hidden()
    await shopper.set_viewport_size(DESKTOP)

    # A reload mid-call resumes: the call comes back and the chat replays.
    await shopper.reload()
    await expect(shopper.locator("#view-call")).to_be_visible(timeout=10_000)
    await wait_until(lambda: remote_playing(shopper, "#remote-video"), within=25)
    await expect(shopper.locator(".msg-mine", has_text="dry skin")).to_be_visible()
    await expect(shopper.locator(".product-card")).to_be_visible()

    # End call: a thank-you, and the advisor's side hears the hang-up.
    await shopper.locator("#end-button").click()
    await expect(shopper.locator("#view-ended")).to_be_visible()
    await expect(shopper.locator("#ended-title")).to_have_text("Thank you!")
    await wait_until(lambda: advisor.evaluate("window.__adv.engine.state === 'closed'"))

    # Back to the start: the advisor is still writing notes (wrap-up), and the page says so.
    await shopper.locator("#view-ended a[href='/widget/']").click()
    await expect(shopper.locator("#view-start")).to_be_visible(timeout=10_000)
    await expect(shopper.locator("#start-notice")).to_contain_text("being wrapped up")


async def test_chat_first_then_the_shopper_starts_a_voice_call(
    server: str, new_page: Any, demo_password: str
) -> None:
    advisor: Page = await new_page(server + "/")
    await advisor.evaluate(ADVISOR_SETUP, {"email": ADVISOR_EMAIL, "password": demo_password})
    shopper = await open_widget(new_page, server, **PHONE)
    await shopper.locator("#talk-chat").click()
    offer = await wait_until(lambda: advisor.evaluate("window.__adv.offers[0] ?? null"), within=15)
    await advisor.evaluate(
        """async (id) => {
            const adv = window.__adv;
            await adv.socket.call("offer.accept", { consultation_id: id });
            adv.chat = adv.socket.chat(id);
            adv.chat.onMessage((m) => adv.messages.push(m));
            adv.kinds = [];
            adv.socket.on("consultation.updated", (c) => adv.kinds.push(c.kind));
        }""",
        offer["id"],
    )
    # A chat goes straight to the conversation: no device check.
    await shopper.wait_for_url(re.compile(r"/call/\?c="), timeout=15_000)
    await expect(shopper.locator("#chat-only-bar")).to_be_visible(timeout=10_000)
    await expect(shopper.locator("#chat-only-text")).to_contain_text("You are chatting with Sakura Tanaka")
    await expect(shopper.locator("#chat-panel")).to_be_visible()
    await screenshot(shopper, "call-chat-kind-phone")
    await advisor.evaluate("window.__adv.chat.send({ kind: 'text', body: 'Hello! How can I help?' })")
    await expect(shopper.locator(".msg-theirs", has_text="How can I help")).to_be_visible()
    await shopper.locator("#chat-input").fill("Could we talk instead?")
    await shopper.locator(".send-button").click()
    await wait_until(
        lambda: advisor.evaluate("window.__adv.messages.some(m => m.body === 'Could we talk instead?')")
    )

    # Chat → voice: the server records the kind (call.escalate), then both sides start media.
    await shopper.locator("#start-voice").click()
    await wait_until(lambda: advisor.evaluate("window.__adv.kinds.includes('voice')"))
    await advisor.evaluate(
        """async (id) => {
            const adv = window.__adv;
            adv.engine = new adv.CallEngine({ socket: adv.socket, consultationId: id, polite: false });
            await adv.engine.start({ audio: true, video: false });
        }""",
        offer["id"],
    )
    await expect(shopper.locator("#stage-text")).to_have_text("Voice call with Sakura Tanaka", timeout=25_000)
    await expect(shopper.locator("#camera-button")).to_be_hidden()
    await expect(shopper.locator("#self-view")).to_be_hidden()
    await wait_until(lambda: advisor.evaluate("window.__adv.engine.state === 'connected'"), within=25)
    await assert_accessible(shopper, "/call/ voice call on a phone")
    await screenshot(shopper, "call-voice-phone")
    await shopper.locator("#end-button").click()
    await expect(shopper.locator("#view-ended")).to_be_visible()
