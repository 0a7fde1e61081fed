"""Video that stays (issue 19, item 1): through the real pages — the shopper's call page and the
advisor's console — a video call goes through voice↔video switches made on either side, camera
off/on on either side and a screen share on either side after the switches. After every step,
on BOTH pages, the element a person sees is either the other side's video with frames
advancing (counted with requestVideoFrameCallback on that very element) or, when the other
side really sends no picture, the placeholder with the avatar — never a hidden picture that
arrives, never a black box.

A screen is a canvas stream standing in for getDisplayMedia (headless Chromium has no screen
picker); it is 320×200 (16:10), the fake camera 640×480 (4:3), so the test sees which
picture shows.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Page, expect

from livedesk.demo import data
from livedesk.demo.seed import DEMO_PASSWORD
from tests.e2e.conftest import screenshot, wait_until

ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")
SCREEN = (320, 200)
CAMERA = (640, 480)

# A stand-in for the browser's screen picker: an animated canvas of SCREEN's size (it must
# keep drawing, or no frames are sent).
FAKE_SCREEN = """
(() => {
  if (!navigator.mediaDevices) return;
  navigator.mediaDevices.getDisplayMedia = async () => {
    const canvas = document.createElement("canvas");
    canvas.width = SCREEN_WIDTH;
    canvas.height = SCREEN_HEIGHT;
    const g = canvas.getContext("2d");
    let n = 0;
    const timer = setInterval(() => {
      if (window.stillScreen) return; // a still slide: nothing changes, no new frames
      n += 1;
      g.fillStyle = `hsl(${(n * 7) % 360} 70% 50%)`;
      g.fillRect(0, 0, canvas.width, canvas.height);
      g.fillStyle = "#fff";
      g.fillText(String(n), 10, 20);
    }, 40);
    const stream = canvas.captureStream(25);
    stream.getVideoTracks()[0].addEventListener("ended", () => clearInterval(timer));
    return stream;
  };
})();
""".replace("SCREEN_WIDTH", str(SCREEN[0])).replace("SCREEN_HEIGHT", str(SCREEN[1]))

# What a person sees on the stage: is the video element visible (not hidden, not covered by
# the placeholder), is the placeholder (and its avatar) visible, and how many frames that
# element has presented so far (requestVideoFrameCallback counts what is painted).
PROBE = """
([videoSelector, placeholderSelector, avatarSelector]) => {
  const video = document.querySelector(videoSelector);
  const placeholder = document.querySelector(placeholderSelector);
  const avatar = avatarSelector ? document.querySelector(avatarSelector) : null;
  if (!video) return null;
  if (!video.__painted) {
    video.__painted = { frames: 0 };
    const tick = () => {
      video.__painted.frames += 1;
      video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
  }
  const shown = (el) => {
    if (!el || el.closest("[hidden]")) return false;
    const style = getComputedStyle(el);
    if (style.display === "none" || style.visibility === "hidden") return false;
    if (Number(style.opacity) === 0) return false;
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0;
  };
  return {
    video: shown(video),
    placeholder: shown(placeholder),
    avatar: avatarSelector ? shown(avatar) : shown(placeholder),
    text: placeholder?.textContent ?? "",
    frames: video.__painted.frames,
    size: [video.videoWidth, video.videoHeight],
  };
}
"""


# Watch the element for a while: the moments it was hidden (none for a picture that stays).
STILL_FOR_MS = 4_000  # longer than a camera's stall limit (call-picture.js STALL_MS, 2.5 s)
STAYS_SHOWN = """
([selector, forMs]) => new Promise((resolve) => {
  const video = document.querySelector(selector);
  const hidden = [];
  const started = performance.now();
  const timer = setInterval(() => {
    const at = Math.round(performance.now() - started);
    if (getComputedStyle(video).visibility === "hidden") hidden.push(at);
    if (at >= forMs) {
      clearInterval(timer);
      resolve(hidden);
    }
  }, 100);
})
"""


class Stage:
    """One page's view of the other side."""

    def __init__(self, page: Page, name: str, video: str, placeholder: str, avatar: str | None) -> None:
        self.page = page
        self.name = name
        self.selectors = [video, placeholder, avatar]

    async def probe(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.page.evaluate(PROBE, self.selectors)
        return result

    async def shows_live_video(self, step: str, size: tuple[int, int] | None = None) -> None:
        """The video element is what shows, and its painted frames keep advancing."""
        seen: list[dict[str, Any]] = []

        async def visible_and_advancing() -> bool:
            now = await self.probe()
            seen.append(now)
            if not now["video"] or now["placeholder"]:
                seen.clear()
                return False
            if size is not None and not _same_shape(now["size"], size):
                seen.clear()
                return False
            return len(seen) > 1 and now["frames"] >= seen[0]["frames"] + 10

        await _within(visible_and_advancing, f"{step}: {self.name} should show live video", self, within=20)

    async def shows_avatar(self, step: str) -> None:
        """The placeholder with the avatar shows; the video element does not."""

        async def avatar() -> bool:
            now = await self.probe()
            return bool(now["avatar"] and now["placeholder"] and not now["video"])

        await _within(avatar, f"{step}: {self.name} should show the avatar", self, within=15)


def _same_shape(seen: list[int], expected: tuple[int, int]) -> bool:
    """The picture's aspect ratio: the encoder may scale a picture down (bandwidth, CPU), but
    the camera stays 4:3 and the screen 16:10."""
    width, height = seen
    return height > 0 and abs(width / height - expected[0] / expected[1]) < 0.02


async def _within(predicate: Any, message: str, stage: Stage, within: float) -> None:
    try:
        await wait_until(predicate, within=within, every=0.25)
    except (TimeoutError, AssertionError) as error:
        raise AssertionError(f"{message}; last seen {await stage.probe()}") from error


async def open_call(server: str, new_page: Any) -> tuple[Page, Page, str]:
    """The advisor signs in, a shopper asks for a video call on the widget, the advisor
    accepts and the shopper joins: both pages in the call."""
    console: Page = await new_page(server + "/staff/")
    await console.add_init_script(FAKE_SCREEN)
    await console.reload()
    await console.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    await console.fill("#email", ADVISOR.email)
    await console.fill("#password", DEMO_PASSWORD)
    await console.click("#signin-form button[type=submit]")
    await expect(console.locator("#presence-state")).to_have_attribute("data-status", "available")

    shopper: Page = await new_page(server + "/widget/")
    await shopper.add_init_script(FAKE_SCREEN)
    await shopper.reload()
    await shopper.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    await shopper.locator("#talk-video").click()
    card = console.locator(".offer").first
    await expect(card).to_be_visible(timeout=15_000)
    cid = await card.get_attribute("data-consultation-id")
    assert cid
    await card.get_by_role("button", name="Accept").click()
    await shopper.wait_for_url(re.compile(r"/call/\?c="), timeout=15_000)
    await expect(shopper.locator("#join-button")).to_be_enabled(timeout=15_000)
    await shopper.locator("#join-button").click()
    await expect(shopper.locator("#view-call")).to_be_visible()
    return console, shopper, cid


async def test_each_side_sees_the_other_through_switches_camera_and_screen_share(
    server: str, new_page: Any
) -> None:
    console, shopper, cid = await open_call(server, new_page)
    workspace = f'.workspace[data-consultation-id="{cid}"]'
    # What the shopper sees of the advisor, and what the advisor sees of the shopper.
    of_advisor = Stage(shopper, "shopper's page", "#remote-video", "#stage-placeholder", "#advisor-photo")
    of_shopper = Stage(
        console, "console", f"{workspace} .call-remote", f"{workspace} .call-placeholder", None
    )
    call = console.locator(f"{workspace} .call")
    advisor_button = {name: call.locator(f'[data-part="{name}"]') for name in ("mode", "camera", "share")}
    shopper_button = {name: shopper.locator(f"#{name}-button") for name in ("mode", "camera", "share")}

    async def both_live(
        step: str, advisor_size: tuple[int, int] = CAMERA, shopper_size: tuple[int, int] = CAMERA
    ) -> None:
        await of_advisor.shows_live_video(step, advisor_size)
        await of_shopper.shows_live_video(step, shopper_size)

    async def kind_is(kind: str) -> None:
        await expect(call).to_have_attribute("data-mode", kind, timeout=10_000)
        await expect(shopper.locator("#mode-label")).to_have_text(
            "Video" if kind == "voice" else "Voice only", timeout=10_000
        )

    await both_live("call connected")

    # video → voice → video, the advisor switching: no picture either way, then both back.
    await advisor_button["mode"].click()
    await kind_is("voice")
    await of_advisor.shows_avatar("advisor switched to voice")
    await of_shopper.shows_avatar("advisor switched to voice")
    await advisor_button["mode"].click()
    await kind_is("video")
    await both_live("advisor switched back to video")

    # The same, the shopper switching.
    await shopper_button["mode"].click()
    await kind_is("voice")
    await of_advisor.shows_avatar("shopper switched to voice")
    await of_shopper.shows_avatar("shopper switched to voice")
    await shopper_button["mode"].click()
    await kind_is("video")
    await both_live("shopper switched back to video")

    # Camera off on either side: the other side sees the avatar (not a black box), the side
    # that turned it off still sees the other's video. On again: live.
    await advisor_button["camera"].click()
    await of_advisor.shows_avatar("advisor's camera off")
    await of_shopper.shows_live_video("advisor's camera off", CAMERA)
    await screenshot(shopper, "video-stays-advisor-camera-off")
    # A share while the camera is off shows the screen; its end goes back to the avatar.
    await advisor_button["share"].click()
    await of_advisor.shows_live_video("advisor shares with the camera off", SCREEN)
    await advisor_button["share"].click()
    await of_advisor.shows_avatar("advisor stopped sharing, camera still off")
    await advisor_button["camera"].click()
    await both_live("advisor's camera on")
    await shopper_button["camera"].click()
    await of_shopper.shows_avatar("shopper's camera off")
    await of_advisor.shows_live_video("shopper's camera off", CAMERA)
    await screenshot(console, "video-stays-shopper-camera-off")
    await shopper_button["camera"].click()
    await both_live("shopper's camera on")

    # Screen share after the switches, either side: the other side sees the screen — also
    # while it stays still (a still screen sends no new frames: no avatar for it).
    await advisor_button["share"].click()
    await both_live("advisor shares the screen", advisor_size=SCREEN)
    await console.evaluate("window.stillScreen = true")
    assert await shopper.evaluate(STAYS_SHOWN, ["#remote-video", STILL_FOR_MS]) == []
    await console.evaluate("window.stillScreen = false")
    await advisor_button["share"].click()
    await both_live("advisor stopped sharing")
    await shopper_button["share"].click()
    await both_live("shopper shares the screen", shopper_size=SCREEN)
    await shopper_button["share"].click()
    await both_live("shopper stopped sharing")
