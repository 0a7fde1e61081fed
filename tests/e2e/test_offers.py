"""Offers and the wait, in real Chromium (issue 19, items 3 and 4).

- An offer rings (the console's chime; muted with one button) and raises a desktop
  notification while the console is in the background; the card fits a long e-mail address.
  Left unanswered, the offer is shown to the advisor as missed and she is set Away until she
  presses "I'm back".
- The first shopper in line, with an advisor idle, is told zero wait — never "about 19
  minutes" from the demo's long handle times.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, WebSocket, expect
from sqlalchemy import update

from livedesk.kit.db import Database
from livedesk.models import Shopper
from livedesk.settings import Settings
from tests.conftest import SocketClient
from tests.e2e.conftest import screenshot
from tests.e2e.test_advisor_console import offer_card, sign_in
from tests.e2e.test_shopper_pages import i18n_ready, join_queue

OFFER_TIMEOUT = 6.0
LONG_EMAIL = "hanako.yamada.with.a.rather.long.mailbox.name@customer-mail.department.example-shop.co.jp"

# Browser instruments, not our code: count the chime's plays and record notifications, with
# the page pretending to be in a background tab.
INSTRUMENT = """() => {
  window.__rings = 0;
  document.getElementById('offer-ring').addEventListener('play', () => { window.__rings += 1; });
  window.__notes = [];
  const Real = window.Notification;
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notes.push({ title, body: options?.body });
    }
  }
  Object.defineProperty(Recorded, 'permission', { get: () => Real.permission });
  window.Notification = Recorded;
  Object.defineProperty(document, 'visibilityState', { get: () => 'hidden', configurable: true });
}"""


@pytest.fixture
async def e2e_settings(e2e_settings: Settings) -> Settings:
    return e2e_settings.model_copy(update={"offer_timeout_seconds": OFFER_TIMEOUT})


async def _shopper(server: str, name: str, email: str | None, e2e_settings: Settings) -> SocketClient:
    sock = SocketClient("/shopper")
    body = {"display_name": name}
    async with aiohttp.ClientSession() as http, http.post(f"{server}/api/v1/visitors", json=body) as response:
        assert response.status == 201, await response.text()
        visit = await response.json()
    if email:
        db = Database(e2e_settings.effective_database_url)
        try:
            async with db.transaction() as session:
                await session.execute(
                    update(Shopper).where(Shopper.id == uuid.UUID(visit["shopper_id"])).values(email=email)
                )
        finally:
            await db.dispose()
    await sock.connect(server, auth={"token": visit["token"]})
    return sock


async def test_an_offer_rings_notifies_and_when_missed_sets_the_advisor_away(
    server: str, new_page: Any, e2e_settings: Settings
) -> None:
    page: Page = await new_page(server + "/staff/")
    await page.context.grant_permissions(["notifications"], origin=server)
    await sign_in(page)
    await expect(page.locator("#offer-sound")).to_have_attribute("aria-pressed", "true")
    await page.evaluate(INSTRUMENT)

    sock = await _shopper(server, LONG_EMAIL, LONG_EMAIL, e2e_settings)
    other: SocketClient | None = None
    try:
        cid = (await sock.ok("queue.join", {"kind": "video"}))["id"]
        card = offer_card(page, cid)
        await expect(card).to_be_visible(timeout=10_000)
        await expect(card.locator(".offer-profile")).to_contain_text(LONG_EMAIL)
        await page.wait_for_function("window.__rings === 1")
        notes = await page.evaluate("window.__notes")
        assert notes == [{"title": "New Video consultation offer", "body": LONG_EMAIL}]
        # The long address wraps inside the card: nothing sticks out of it or its column.
        fits = await card.locator(".offer-card").evaluate(
            "el => el.scrollWidth <= el.clientWidth && el.getBoundingClientRect().right"
            " <= document.getElementById('offers').getBoundingClientRect().right + 1"
        )
        assert fits is True
        await screenshot(page, "offer-long-email")

        # Nobody answers: the offer goes, the advisor sees which one she missed and is Away.
        await expect(card).to_have_count(0, timeout=(OFFER_TIMEOUT + 10) * 1000)
        missed = page.locator("#missed-offer")
        await expect(missed).to_be_visible()
        await expect(missed).to_contain_text(LONG_EMAIL)
        await expect(missed).to_contain_text("You are set to Away")
        await expect(page.locator("#presence-state")).to_have_attribute("data-status", "away")
        await expect(page.locator("#presence-select")).to_have_value("away")
        await screenshot(page, "offer-missed")

        # "I'm back": available again, the notice goes; muted, the next offer does not ring.
        await page.get_by_role("button", name="I'm back").click()
        await expect(page.locator("#presence-state")).to_have_attribute("data-status", "available")
        await expect(missed).to_be_hidden()
        await page.locator("#offer-sound").click()
        await expect(page.locator("#offer-sound")).to_have_attribute("aria-pressed", "false")
        other = await _shopper(server, "Second shopper", None, e2e_settings)
        second = (await other.ok("queue.join", {"kind": "chat"}))["id"]
        await expect(offer_card(page, second)).to_be_visible(timeout=10_000)
        await page.wait_for_function("window.__notes.length === 2")
        assert await page.evaluate("window.__rings") == 1
    finally:
        await sock.close()
        if other is not None:
            await other.close()


def _positions(frames: list[str]) -> list[dict[str, Any]]:
    found = []
    for frame in frames:
        match = re.match(r"^42/shopper,(?:\d+)?(\[.*\])$", frame, re.DOTALL)
        if match:
            name, *args = json.loads(match.group(1))
            if name == "queue.position":
                found.append(args[0])
    return found


async def test_first_shopper_in_line_with_an_idle_advisor_waits_zero(server: str, new_page: Any) -> None:
    advisor = await new_page(server + "/staff/")
    await sign_in(advisor)  # idle and available; the demo's history has long consultations

    shopper: Page = await new_page(server + "/widget/")
    frames: list[str] = []

    def watch(ws: WebSocket) -> None:
        ws.on("framereceived", lambda payload: frames.append(payload if isinstance(payload, str) else ""))

    shopper.on("websocket", watch)
    await i18n_ready(shopper)
    # Every wait the page ever shows, kept as it is written.
    await shopper.evaluate(
        """() => {
          window.__waits = [];
          const box = document.getElementById('queue-wait');
          const keep = () => { if (!box.hidden && box.textContent) window.__waits.push(box.textContent); };
          new MutationObserver(keep)
            .observe(box, { childList: true, characterData: true, subtree: true, attributes: true });
        }"""
    )
    cid = await join_queue(shopper, "video")
    await expect(offer_card(advisor, cid)).to_be_visible(timeout=10_000)
    mine = [p for p in _positions(frames) if p["consultation_id"] == cid]
    assert mine, frames
    assert [p["estimated_wait_seconds"] for p in mine] == [0] * len(mine)
    assert all(p["advisors_online"] >= 1 for p in mine)
    shown = await shopper.evaluate("window.__waits")
    assert not any(re.search(r"about \d+ min", text) for text in shown), shown
