"""Recording through the real pages in Chromium: the advisor presses Record, the shopper is
asked and allows it, both browsers open their send-only leg to the server (aiortc), the advisor
stops — and the file the server made holds both participants' audio and video, decodes with
PyAV, and lasts about as long as the recording ran. A refusal leaves no file."""

from __future__ import annotations

import base64
import io
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import av
from playwright.async_api import Page, expect
from sqlalchemy import select

from livedesk.demo import data
from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.kit.db import Database
from livedesk.models import Recording
from livedesk.settings import Settings
from tests.e2e.conftest import axe_violations, screenshot, wait_until

ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

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

# Frames the page has sent on its server leg (the peer connection that only sends).
LEG_SENT = """
async () => {
  const legs = (window.__pcs || []).filter((pc) => pc.connectionState === "connected" &&
    pc.getTransceivers().length && pc.getTransceivers().every((t) => t.direction === "sendonly"));
  const out = { video: 0, audio: 0, codec: "" };
  for (const pc of legs) {
    const stats = await pc.getStats();
    for (const s of stats.values()) {
      if (s.type !== "outbound-rtp") continue;
      if (s.kind === "video") {
        out.video += s.framesSent || 0;
        out.codec = stats.get(s.codecId)?.mimeType || out.codec;
      }
      if (s.kind === "audio") out.audio += s.packetsSent || 0;
    }
  }
  return out;
}
"""


def keep(path: Path, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / f"{name}.png")


async def assert_axe_clean(page: Page) -> None:
    violations = await axe_violations(page)
    assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]


async def _in_a_call(server: str, new_page: Any) -> tuple[Page, Page, Any, str]:
    console: Page = await new_page(server + "/staff/")
    await console.add_init_script(RECORD_PEER_CONNECTIONS)
    await console.reload()
    await console.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    await console.fill("#email", ADVISOR.email)
    await console.fill("#password", DEMO_PASSWORD)
    await console.click("#signin-form button[type=submit]")
    await expect(console.locator("#presence-state")).to_have_attribute("data-status", "available")

    shopper: Page = await new_page(server + "/widget/")
    await shopper.add_init_script(RECORD_PEER_CONNECTIONS)
    await shopper.reload()
    await shopper.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    await shopper.locator("#talk-video").click()
    card = console.locator(".offer").first
    await expect(card).to_be_visible(timeout=15_000)
    cid = await card.get_attribute("data-consultation-id")
    assert cid
    await card.get_by_role("button", name="Accept").click()
    workspace = console.locator(f'.workspace[data-consultation-id="{cid}"]')
    await shopper.wait_for_url(re.compile(r"/call/\?c="), timeout=15_000)
    await expect(shopper.locator("#join-button")).to_be_enabled(timeout=15_000)
    await shopper.locator("#join-button").click()
    await expect(workspace.locator(".call .call-state")).to_have_text("Connected", timeout=30_000)
    return console, shopper, workspace, cid


async def _leg_sent(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(LEG_SENT)
    return result


async def _recording(settings: Settings, cid: str) -> Recording | None:
    db = Database(settings.effective_database_url)
    try:
        async with db.read() as session:
            rows = await session.scalars(select(Recording).where(Recording.consultation_id == uuid.UUID(cid)))
            return rows.first()
    finally:
        await db.dispose()


async def test_a_recorded_call_makes_one_file_with_both_participants(
    server: str, new_page: Any, e2e_settings: Settings
) -> None:
    console, shopper, workspace, cid = await _in_a_call(server, new_page)

    record = workspace.get_by_test_id("recording-toggle")
    await expect(record).to_have_text("Record")
    await record.click()
    await expect(workspace.get_by_test_id("recording-indicator")).to_contain_text("Asking the customer")

    consent = shopper.get_by_test_id("recording-consent")
    await expect(consent).to_be_visible(timeout=10_000)
    await expect(consent.get_by_role("heading")).to_have_text("May we record this call?")
    await expect(consent.get_by_role("heading")).to_be_focused()
    await assert_axe_clean(shopper)
    keep(await screenshot(shopper, "call-recording-consent-desktop"), "call-recording-consent-desktop")
    allowed_at = time.monotonic()
    await consent.get_by_role("button", name="Allow recording").click()
    await expect(consent).to_be_hidden()

    # Both pages say so, and both send their camera and microphone to the server leg as VP8.
    for page, scope in ((shopper, shopper), (console, workspace)):
        indicator = scope.get_by_test_id("recording-indicator")
        await expect(indicator).to_have_text("Recording", timeout=20_000)
        await expect(indicator).to_have_attribute("data-status", "recording")
        del page
    started = await wait_until(lambda: _both_sending(console, shopper, 1), within=20)
    sending_at = time.monotonic()
    assert started[0]["codec"] == "video/VP8"
    await expect(record).to_have_text("Stop recording")
    await expect(record).to_have_attribute("aria-pressed", "true")
    await assert_axe_clean(console)
    keep(await screenshot(console, "console-recording-desktop"), "console-recording-desktop")
    keep(await screenshot(shopper, "call-recording-desktop"), "call-recording-desktop")

    # About four seconds of recording (counted in frames the browsers sent to the leg).
    await wait_until(lambda: _both_sending(console, shopper, 120), within=30)
    clicked_at = time.monotonic()
    await record.click()
    await expect(workspace.get_by_test_id("recording-indicator")).not_to_have_attribute(
        "data-status", "recording", timeout=10_000
    )
    stopped_at = time.monotonic()
    await expect(workspace.get_by_test_id("recording-indicator")).to_have_text(
        "Recording saved", timeout=30_000
    )
    await expect(shopper.get_by_test_id("recording-indicator")).to_have_text("Recording saved")
    await expect(record).to_have_text("Record")

    recording = await _recording(e2e_settings, cid)
    assert recording is not None
    assert recording.status.value == "ready"
    assert recording.duration_ms is not None
    # The file is played through the API with the advisor's session (Range supported).
    body_b64 = await console.evaluate(
        """async (url) => {
            const response = await fetch(url);
            if (!response.ok) throw new Error(`HTTP ${response.status}`);
            const bytes = new Uint8Array(await response.arrayBuffer());
            let binary = "";
            for (let i = 0; i < bytes.length; i += 8192) {
                binary += String.fromCharCode(...bytes.subarray(i, i + 8192));
            }
            return btoa(binary);
        }""",
        f"/api/v1/recordings/{recording.id}/media",
    )
    body = base64.b64decode(body_b64)
    assert len(body) == recording.size_bytes
    with av.open(io.BytesIO(body)) as container:
        titles = [s.metadata.get("title") for s in container.streams]
        assert titles == ["shopper video", "shopper audio", "advisor video", "advisor audio"]
        decoded = {s.index: 0 for s in container.streams}
        for packet in container.demux():
            if packet.size:
                decoded[packet.stream.index] += len(packet.decode())
        video = container.streams.video[0]
        assert video.codec_context.width > 0
    # Every track decodes: ~30 fps video and 50 Opus frames a second for ~4 s.
    assert all(count > 60 for count in decoded.values()), decoded
    seconds = recording.duration_ms / 1000
    # As long as it ran: at least from both pages sending to the click, at most from the
    # consent to the server saying it stopped (this machine is shared: its timing is loose).
    shortest, longest = clicked_at - sending_at, stopped_at - allowed_at
    assert shortest - 1.0 <= seconds <= longest + 0.5, (shortest, seconds, longest)

    # The advisor plays it from the customer's history in the console (streamed with Range).
    await console.reload()
    workspace = console.locator(f'.workspace[data-consultation-id="{cid}"]')
    player = workspace.get_by_test_id("recording-player")
    await expect(player).to_be_visible(timeout=20_000)
    await player.locator("summary").click()
    video = player.locator("video")
    await expect(video).to_be_visible()
    played = await wait_until(
        lambda: video.evaluate("(v) => v.readyState >= 1 && Number.isFinite(v.duration) ? v.duration : 0"),
        within=15,
    )
    assert abs(played - seconds) < 1.5, (played, seconds)
    await assert_axe_clean(console)
    keep(
        await screenshot(console, "console-recording-playback-desktop"), "console-recording-playback-desktop"
    )


async def _both_sending(
    console: Page, shopper: Page, frames: int
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    a, b = await _leg_sent(console), await _leg_sent(shopper)
    if a["video"] >= frames and b["video"] >= frames and a["audio"] > 0 and b["audio"] > 0:
        return a, b
    return None


async def test_a_refusal_keeps_nothing(server: str, new_page: Any, e2e_settings: Settings) -> None:
    _console, shopper, workspace, cid = await _in_a_call(server, new_page)
    await workspace.get_by_test_id("recording-toggle").click()
    consent = shopper.get_by_test_id("recording-consent")
    await expect(consent).to_be_visible(timeout=10_000)
    await consent.get_by_role("button", name="Don't record").click()
    await expect(workspace.get_by_test_id("recording-indicator")).to_contain_text(
        "Recording declined", timeout=10_000
    )
    await expect(shopper.get_by_test_id("recording-indicator")).to_contain_text("Recording declined")
    assert (await _leg_sent(shopper))["video"] == 0
    recording = await _recording(e2e_settings, cid)
    assert recording is not None
    assert recording.status.value == "refused"
    assert recording.storage_key is None
    stored = [p for p in (e2e_settings.data_dir / "recordings").rglob("*") if p.is_file()]
    assert stored == []
