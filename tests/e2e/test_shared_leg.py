"""One server leg per party when a call is monitored and recorded at once (issue 20 item 3),
through the real pages in Chromium: a supervisor listens, the advisor starts recording and the
shopper allows it — each party's page keeps one send-only connection to livedesk (no second
upload), the supervisor keeps decoding both, the supervisor leaves and the recording goes on
over the same connection, and the recording stops "saved" (complete) with the legs closed."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from tests.e2e.conftest import wait_until
from tests.e2e.test_monitoring import MONITOR_FRAMES, SUPERVISOR, _board, _in_a_call

# The page's open send-only connections (server legs): the call itself sends and receives.
SERVER_LEGS = """
() => (window.__pcs || []).filter((pc) => pc.signalingState !== "closed" &&
  pc.getTransceivers().length > 0 &&
  pc.getTransceivers().every((t) => t.currentDirection === "sendonly")).length
"""


async def _legs(page: Page) -> int:
    return int(await page.evaluate(SERVER_LEGS))


async def test_monitoring_and_recording_share_one_leg_per_party(server: str, new_page: Any) -> None:
    console, shopper, workspace, cid = await _in_a_call(server, new_page)
    board = await _board(server, new_page, SUPERVISOR.email)
    panel = board.get_by_test_id("monitor-panel")
    listen = panel.locator(f'li[data-consultation-id="{cid}"]').get_by_test_id("monitor-listen")
    await expect(listen).to_have_text("Listen", timeout=15_000)
    await listen.click()

    async def both_decoding() -> dict[str, Any] | None:
        frames: dict[str, Any] = await board.evaluate(MONITOR_FRAMES)
        video = [v for k, v in frames.items() if k.startswith("video:")]
        return frames if len(video) == 2 and all(v > 0 for v in video) else None

    await wait_until(both_decoding, within=20)

    async def one_leg_each() -> bool:
        return await _legs(console) == 1 and await _legs(shopper) == 1

    await wait_until(one_leg_each, within=10)

    # Recording starts while the supervisor listens: the same connections are recorded.
    record = workspace.get_by_test_id("recording-toggle")
    await record.click()
    consent = shopper.get_by_test_id("recording-consent")
    await expect(consent).to_be_visible(timeout=10_000)
    await consent.get_by_role("button", name="Allow recording").click()
    for indicator in (
        workspace.get_by_test_id("recording-indicator"),
        shopper.get_by_test_id("recording-indicator"),
    ):
        await expect(indicator).to_have_text("Recording", timeout=20_000)
    assert await one_leg_each()
    before: dict[str, Any] = await board.evaluate(MONITOR_FRAMES)

    async def still_decoding() -> bool:
        now: dict[str, Any] = await board.evaluate(MONITOR_FRAMES)
        return all(now.get(k, 0) >= v + 30 for k, v in before.items() if k.startswith("video:"))

    await wait_until(still_decoding, within=15)
    assert await one_leg_each()

    # The supervisor leaves; the recording keeps the legs (and the pages their one connection).
    await panel.get_by_test_id("monitor-stop").click()
    await expect(shopper.get_by_test_id("monitoring-notice")).to_be_hidden(timeout=10_000)
    await expect(workspace.get_by_test_id("recording-indicator")).to_have_text("Recording")
    assert await one_leg_each()

    await record.click()
    saved = workspace.get_by_test_id("recording-indicator")
    await expect(saved).to_have_text("Recording saved", timeout=30_000)
    await expect(shopper.get_by_test_id("recording-indicator")).to_have_text("Recording saved")
    await expect(workspace.locator(".rec")).to_have_attribute("data-incomplete", "false")

    async def legs_closed() -> bool:
        return await _legs(console) == 0 and await _legs(shopper) == 0

    await wait_until(legs_closed, within=10)
