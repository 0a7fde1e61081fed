"""The browsers of the topology journey: shopper, advisor and supervisor pages, each pinned to a
replica by its client address (nginx's ip_hash), media forced through TURN, and what the test
reads from them (frames, the relay in use, chat bubbles)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Browser, Locator, Page, expect

from livedesk.demo import data
from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.models import Role

ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")
SUPERVISOR = next(s for s in data.STAFF if s.role is Role.SUPERVISOR)

# Every peer connection the page makes is relay-only (iceTransportPolicy "relay") and keeps only
# the TURN URLs matching KEEP: the shopper relays over UDP, the advisor over TLS (turns: on
# 5349), so one call proves both. The connections are kept for getStats.
FORCE_RELAY = """
((keep) => {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = function (config = {}, ...rest) {
    const iceServers = (config.iceServers || [])
      .map((s) => ({ ...s, urls: [].concat(s.urls).filter((u) => new RegExp(keep).test(u)) }))
      .filter((s) => s.urls.length);
    const pc = new Original({ ...config, iceServers, iceTransportPolicy: "relay" }, ...rest);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
})(%s);
"""

# The call's own connection (the one that sends and receives): video frames decoded, and the
# local candidate of each selected pair ("relay/udp", "relay/tls").
CALL_STATS = """
async () => {
  const pcs = (window.__pcs || []).filter((pc) => pc.connectionState === "connected" &&
    pc.getTransceivers().some((t) => t.currentDirection === "sendrecv"));
  let frames = 0;
  const paths = [];
  for (const pc of pcs) {
    const stats = await pc.getStats();
    for (const s of stats.values()) {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
      if (s.type === "transport" && s.selectedCandidatePairId) {
        const pair = stats.get(s.selectedCandidatePairId);
        const local = pair && stats.get(pair.localCandidateId);
        if (local) paths.push(`${local.candidateType}/${local.relayProtocol || local.protocol}`);
      }
    }
  }
  return { calls: pcs.length, frames, paths };
}
"""

# The supervisor's monitoring connection (only receives: two audio and two video sections):
# video frames decoded per section.
MONITOR_FRAMES = """
async () => {
  const pcs = (window.__pcs || []).filter((pc) => pc.connectionState === "connected" &&
    pc.getTransceivers().length === 4 &&
    pc.getTransceivers().every((t) => t.currentDirection === "recvonly"));
  const out = [];
  for (const pc of pcs) {
    for (const s of (await pc.getStats()).values()) {
      if (s.type === "inbound-rtp" && s.kind === "video") out.push(s.framesDecoded || 0);
    }
  }
  return out;
}
"""


@dataclass
class Party:
    """One browser page and the chat texts it has typed."""

    page: Page
    address: str
    sent: list[str] = field(default_factory=list)

    async def call_stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.page.evaluate(CALL_STATS)
        return result


async def open_page(browser: Browser, address: str, path: str, keep_turn: str) -> Page:
    context = await browser.new_context(
        viewport={"width": 1366, "height": 768},
        locale="en-US",
        permissions=["camera", "microphone"],
        ignore_https_errors=True,
        # The test reads the page (wait_for_function); the pages' own CSP is tested elsewhere.
        bypass_csp=True,
    )
    page = await context.new_page()
    page.on("pageerror", lambda error: print(f"[pageerror {address}] {error}"))
    await page.add_init_script(FORCE_RELAY % json.dumps(keep_turn))
    await page.goto(f"https://{address}{path}")
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    return page


async def sign_in_advisor(browser: Browser, address: str) -> Page:
    console = await open_page(browser, address, "/staff/", r"^turns:")
    await console.fill("#email", ADVISOR.email)
    await console.fill("#password", DEMO_PASSWORD)
    await console.click("#signin-form button[type=submit]")
    await expect(console.locator("#presence-state")).to_have_attribute("data-status", "available")
    return console


async def start_call(browser: Browser, console: Page, address: str) -> tuple[Page, Locator, str]:
    shopper = await open_page(browser, address, "/widget/", r"^turn:.*transport=udp")
    await shopper.wait_for_load_state("networkidle")
    await shopper.locator("#talk-video").click()
    # `livedesk demo` shows its pre-call survey before the queue.
    survey = shopper.locator("#view-survey")
    await expect(survey).to_be_visible()
    await survey.get_by_label("Skin care").check()
    await survey.get_by_label("English").check()
    await survey.get_by_label("I agree that my answers are shared with the advisor").check()
    await shopper.locator("#survey-submit").click()
    card = console.locator(".offer").first
    try:
        await expect(card).to_be_visible(timeout=20_000)
    except AssertionError:
        print("[shopper page]", await shopper.locator("body").inner_text())
        raise
    cid = await card.get_attribute("data-consultation-id")
    assert cid
    await card.get_by_role("button", name="Accept").click()
    workspace = console.locator(f'.workspace[data-consultation-id="{cid}"]')
    await shopper.wait_for_url(re.compile(r"/call/\?c="), timeout=20_000)
    await expect(shopper.locator("#join-button")).to_be_enabled(timeout=20_000)
    await shopper.locator("#join-button").click()
    await expect(workspace.locator(".call .call-state")).to_have_text("Connected", timeout=40_000)
    return shopper, workspace, cid


async def board(browser: Browser, address: str) -> Page:
    page = await open_page(browser, address, "/supervisor/", r"^turn")
    await page.fill("#signin-email", SUPERVISOR.email)
    await page.fill("#signin-password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")
    return page


async def monitor_frames(page: Page) -> list[int]:
    result: list[int] = await page.evaluate(MONITOR_FRAMES)
    return result
