"""The whole journey through the real pages on both sides: a shopper on the widget clicks
"talk now" (video), the advisor accepts in the console, both browsers receive video (frames
decoded) and audio (packets received), they chat both ways, switch to voice, the shopper
reloads mid-call and the call resumes, they hang up — and the consultation is on the
shopper's timeline."""

from __future__ import annotations

import re
import uuid
from typing import Any

from playwright.async_api import Page, expect

from livedesk.demo import data
from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.kit.db import Database
from livedesk.models import Consultation
from livedesk.settings import Settings
from tests.e2e.conftest import wait_until

ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")

# Test instrumentation only: remember every RTCPeerConnection the page makes, so the test
# can read its getStats() like chrome://webrtc-internals would.
RECORD_PEER_CONNECTIONS = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Original(...args);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
})();
"""

INBOUND = """
async () => {
  const pcs = (window.__pcs || []).filter((pc) => pc.connectionState === "connected");
  const out = { video: 0, audio: 0 };
  for (const pc of pcs) {
    for (const s of (await pc.getStats()).values()) {
      if (s.type !== "inbound-rtp") continue;
      if (s.kind === "video") out.video += s.framesDecoded || 0;
      if (s.kind === "audio") out.audio += s.packetsReceived || 0;
    }
  }
  return out;
}
"""


async def inbound(page: Page) -> dict[str, int]:
    result: dict[str, int] = await page.evaluate(INBOUND)
    return result


async def media_flows(page: Page, *, video: bool) -> None:
    """Audio packets (and video frames, if asked) keep arriving: two readings, rising."""
    first = await wait_until(lambda: _positive(page, video), within=30)

    async def rising() -> bool:
        now = await inbound(page)
        return now["audio"] > first["audio"] and (not video or now["video"] > first["video"])

    await wait_until(rising, within=15)


async def _positive(page: Page, video: bool) -> dict[str, int] | None:
    now = await inbound(page)
    return now if now["audio"] > 0 and (not video or now["video"] > 0) else None


async def test_talk_now_to_timeline_through_both_real_pages(
    server: str, new_page: Any, e2e_settings: Settings
) -> None:
    # The advisor signs in to the console.
    console: Page = await new_page(server + "/staff/")
    await console.add_init_script(RECORD_PEER_CONNECTIONS)
    await console.reload()
    await console.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    await console.fill("#email", ADVISOR.email)
    await console.fill("#password", DEMO_PASSWORD)
    await console.click("#signin-form button[type=submit]")
    await expect(console.locator("#presence-state")).to_have_attribute("data-status", "available")

    # The shopper opens the widget and clicks "talk now" by video.
    shopper: Page = await new_page(server + "/widget/")
    await shopper.add_init_script(RECORD_PEER_CONNECTIONS)
    await shopper.reload()
    await shopper.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    await shopper.locator("#talk-video").click()
    await expect(shopper.locator("#view-queue")).to_be_visible()

    # The offer reaches the console; the advisor accepts.
    card = console.locator(".offer").first
    await expect(card).to_be_visible(timeout=15_000)
    await expect(card.locator(".kind-badge")).to_have_text("Video")
    cid = await card.get_attribute("data-consultation-id")
    assert cid
    await card.get_by_role("button", name="Accept").click()
    workspace = console.locator(f'.workspace[data-consultation-id="{cid}"]')
    await expect(workspace).to_be_visible()

    # The shopper is taken to the call page and joins with camera and microphone.
    await shopper.wait_for_url(re.compile(r"/call/\?c="), timeout=15_000)
    await expect(shopper.locator("#join-button")).to_be_enabled(timeout=15_000)
    await shopper.locator("#join-button").click()
    await expect(shopper.locator("#view-call")).to_be_visible()

    # Both browsers decode video and receive audio.
    await media_flows(shopper, video=True)
    await media_flows(console, video=True)
    await expect(workspace.locator(".call .call-state")).to_have_text("Connected")

    # Chat both ways, through the pages.
    await shopper.locator("#chat-input").fill("Which serum for dry skin?")
    await shopper.locator("#chat-input").press("Enter")
    await expect(workspace.locator(".msg-shopper .msg-body", has_text="dry skin")).to_be_visible()
    box = workspace.get_by_label("Message to the shopper")
    await box.fill("Let me show you the Sakura Glow Serum.")
    await box.press("Enter")
    await expect(shopper.locator(".msg-theirs", has_text="Sakura Glow Serum")).to_be_visible()

    # Switch to voice: audio keeps flowing, the consultation's kind follows.
    await shopper.locator("#mode-button").click()
    await expect(workspace.locator(".ws-heading .kind-badge")).to_have_text("Voice", timeout=10_000)
    await media_flows(console, video=False)

    # The shopper reloads mid-call: the call resumes and the chat is replayed.
    await shopper.reload()
    await expect(shopper.locator("#view-call")).to_be_visible(timeout=15_000)
    await media_flows(shopper, video=False)
    await expect(shopper.locator(".msg-mine", has_text="dry skin")).to_be_visible()

    # Hang up; the advisor closes with notes.
    await shopper.locator("#end-button").click()
    await expect(shopper.locator("#view-ended")).to_be_visible()
    await expect(workspace.locator(".ws-status")).to_have_text("Ended — wrap-up", timeout=10_000)
    await workspace.get_by_label("Notes for the customer history").fill("Recommended the serum.")
    await workspace.get_by_role("button", name="Close with notes").click()
    await expect(workspace).to_have_count(0)

    # The consultation is on the shopper's timeline, read through the API with the advisor's
    # session, newest first.
    db = Database(e2e_settings.effective_database_url)
    try:
        async with db.read() as session:
            consultation = await session.get(Consultation, uuid.UUID(cid))
            assert consultation is not None
            shopper_id = str(consultation.shopper_id)
    finally:
        await db.dispose()
    summaries = await console.evaluate(
        """async ([shopper, cid]) => {
            const page = await (await fetch(`/api/v1/shoppers/${shopper}/timeline?kind=consultation`)).json();
            return page.events.filter((e) => e.consultation_id === cid).map((e) => e.summary);
        }""",
        [shopper_id, cid],
    )
    assert summaries[0] == "video consultation closed" or summaries[0] == "voice consultation closed", (
        summaries
    )
    assert "advisor accepted" in summaries
    assert any(s.endswith("requested") for s in summaries)
