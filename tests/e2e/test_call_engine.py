"""web/shared/call.js: two real Chromium pages (shopper polite, advisor impolite) make a real
call with the fake camera and microphone, inside the test network namespace.

Media flow is proven from getStats (frames decoded and audio packets received growing), read
with deadlines; switching to voice, a reload mid-call and hanging up are driven the way the
pages drive them.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

from tests.e2e.conftest import wait_until
from tests.e2e.test_socket_wrapper import SHOPPER_SETUP, connected, js, start_consultation

# Start an engine on the page's socket and record what it tells the page. The remote stream
# plays in a muted <video>, as a page would show it.
START_ENGINE = """
async ([id, polite]) => {
  const { CallEngine } = await import("/shared/call.js");
  const engine = new CallEngine({ socket: window.h.socket, consultationId: id, polite });
  Object.assign(window.h, { engine, callStates: [], callErrors: [], qualities: 0 });
  engine.addEventListener("state", (e) => window.h.callStates.push(e.detail));
  engine.addEventListener("error", (e) => window.h.callErrors.push(e.detail.name));
  engine.addEventListener("quality", () => { window.h.qualities += 1; });
  engine.addEventListener("remotestream", (e) => {
    let video = document.getElementById("e2e-remote");
    if (!video) {
      video = document.createElement("video");
      video.id = "e2e-remote";
      video.muted = true;
      video.autoplay = true;
      video.playsInline = true;
      document.body.append(video);
    }
    if (video.srcObject !== e.detail) video.srcObject = e.detail;
  });
  const local = await engine.start({ audio: true, video: true });
  return local.getTracks().map((t) => t.kind).sort();
}
"""


async def stat(page: Page, key: str) -> Any:
    return await js(page, "async (key) => (await window.h.engine.stats())[key]", key)


async def flowing(page: Page, key: str, by: int, within: float = 15.0) -> None:
    """Wait until the counter grows by at least ``by`` (frames, packets)."""
    first = await stat(page, key) or 0

    async def grown() -> bool:
        return (await stat(page, key) or 0) >= first + by

    await wait_until(grown, within=within, every=0.2)


async def stalled(page: Page, key: str, within: float = 15.0) -> None:
    """Wait until the counter stays put between two readings a second apart."""
    last = [await stat(page, key)]

    async def same() -> bool:
        now = await stat(page, key)
        unchanged: bool = now == last[0]
        last[0] = now
        return unchanged

    await wait_until(same, within=within, every=1.0)


async def call_state(page: Page) -> str:
    state: str = await js(page, "window.h.engine.state")
    return state


async def both_connected(advisor: Page, shopper: Page, within: float = 20.0) -> None:
    async def check() -> bool:
        return await call_state(advisor) == "connected" and await call_state(shopper) == "connected"

    await wait_until(check, within=within)


async def test_a_video_call_connects_switches_to_voice_survives_a_reload_and_hangs_up(
    server: str, new_page: Any, demo_password: str
) -> None:
    advisor, shopper, cid = await start_consultation(new_page, server, demo_password, kind="video")
    assert await js(advisor, START_ENGINE, [cid, False]) == ["audio", "video"]
    assert await js(shopper, START_ENGINE, [cid, True]) == ["audio", "video"]
    await both_connected(advisor, shopper)
    for page in (advisor, shopper):
        await flowing(page, "framesDecoded", by=15)
        await flowing(page, "audioPacketsReceived", by=25)
        assert await js(page, "window.h.callErrors") == []
    quality = await js(advisor, "window.h.engine.stats()")
    assert quality["level"] in {"good", "fair"}
    assert quality["rttMs"] is not None
    await advisor.wait_for_function("window.h.qualities >= 1", timeout=10_000)

    # Voice: the advisor's camera stops; the shopper's video goes quiet, the sound goes on.
    assert await js(advisor, "window.h.engine.setMode('voice')") is True
    assert await js(advisor, "window.h.engine.localStream.getVideoTracks().length") == 0
    await stalled(shopper, "framesDecoded")
    await flowing(shopper, "audioPacketsReceived", by=25)
    await flowing(advisor, "framesDecoded", by=15)  # the shopper still sends video
    # And back to video.
    assert await js(advisor, "window.h.engine.setMode('video')") is True
    await flowing(shopper, "framesDecoded", by=15)

    # Mute and camera-off only disable tracks: no renegotiation, the call stays up.
    await js(shopper, "window.h.engine.setMuted(true); window.h.engine.setCameraOff(true)")
    assert await js(shopper, "window.h.engine.localStream.getTracks().map((t) => t.enabled)") == [
        False,
        False,
    ]
    await js(shopper, "window.h.engine.setMuted(false); window.h.engine.setCameraOff(false)")

    # The shopper reloads mid-call: a new page, a new engine; the advisor keeps its media.
    await shopper.reload()
    await js(shopper, SHOPPER_SETUP)
    await connected(shopper)
    await js(shopper, START_ENGINE, [cid, True])
    await both_connected(advisor, shopper)
    for page in (advisor, shopper):
        await flowing(page, "framesDecoded", by=15)
        await flowing(page, "audioPacketsReceived", by=25)
    # The advisor's engine noticed and came back; nothing went wrong on the way.
    states = await js(advisor, "window.h.callStates")
    assert states == ["connecting", "connected", "reconnecting", "connected"]
    assert await js(advisor, "window.h.callErrors") == []
    assert await js(shopper, "window.h.callErrors") == []
    assert await js(advisor, "window.h.engine.localStream.getTracks().every((t) => t.readyState === 'live')")

    # Hang up: the other side hears it and closes too.
    await js(shopper, "window.h.engine.hangup()")
    assert await call_state(shopper) == "closed"
    await wait_until(lambda: _is_closed(advisor))
    assert await js(advisor, "window.h.engine.localStream.getTracks().every((t) => t.readyState === 'ended')")


async def _is_closed(page: Page) -> bool:
    return await call_state(page) == "closed"


async def test_a_shopper_who_blocks_the_camera_still_sees_and_hears_the_advisor(
    server: str, new_page: Any, demo_password: str
) -> None:
    advisor, shopper, cid = await start_consultation(
        new_page, server, demo_password, kind="video", shopper_media=False
    )
    await js(advisor, START_ENGINE, [cid, False])
    assert await js(shopper, START_ENGINE, [cid, True]) == []
    # The page hears why (to show help), and the call goes on receive-only.
    assert await js(shopper, "window.h.callErrors") == ["NotAllowedError"]
    assert await js(shopper, "window.h.engine.mode") == "voice"
    await both_connected(advisor, shopper)
    await flowing(shopper, "framesDecoded", by=15)
    await flowing(shopper, "audioPacketsReceived", by=25)
    assert await stat(advisor, "framesDecoded") == 0


# Record the call.signal messages a page's socket got acknowledged (the server relays a signal
# before it acks it, so an acked offer has gone to whoever was there to hear it).
COUNT_SIGNALS = """
() => {
  const raw = window.h.socket.socket;
  const emit = raw.emitWithAck.bind(raw);
  window.h.relayed = [];
  raw.emitWithAck = (event, ...args) => {
    const sent = emit(event, ...args);
    if (event === "call.signal") {
      sent.then((ack) => ack?.ok && window.h.relayed.push([args[0].type, args[0].data.offer ?? null]));
    }
    return sent;
  };
}
"""


async def test_signals_lost_while_the_shopper_was_offline_are_sent_again(
    server: str, new_page: Any, demo_password: str
) -> None:
    advisor, shopper, cid = await start_consultation(new_page, server, demo_password, kind="video")
    await js(advisor, COUNT_SIGNALS)
    # The shopper's side starts first (its restart reaches no engine), then loses the network.
    await js(shopper, START_ENGINE, [cid, True])
    await shopper.context.set_offline(True)
    await js(shopper, "window.h.socket.socket.io.engine.close()")
    await shopper.wait_for_function("window.h.socket.state === 'reconnecting'")

    # The advisor's offer goes out while nobody of the shopper's is connected: lost.
    await js(advisor, START_ENGINE, [cid, False])
    await advisor.wait_for_function("window.h.relayed.some(([type]) => type === 'offer')")
    assert await call_state(shopper) == "connecting"

    # Back online: the shopper's engine says hello again and the advisor repeats its offer
    # (the same offer, number 1), which connects the call.
    await shopper.context.set_offline(False)
    await both_connected(advisor, shopper, within=30)
    offers = await js(advisor, "window.h.relayed.filter(([type]) => type === 'offer')")
    assert offers == [["offer", 1], ["offer", 1]]
    for page in (advisor, shopper):
        await flowing(page, "framesDecoded", by=15)

    # A socket drop mid-call does not touch the media path: the call stays connected.
    await js(shopper, "window.h.socket.socket.io.engine.close()")
    await shopper.wait_for_function("window.h.socket.state === 'connected'", timeout=15_000)
    await flowing(advisor, "framesDecoded", by=15)
    assert await js(shopper, "window.h.callStates") == ["connecting", "connected"]
    assert await js(advisor, "window.h.callStates") == ["connecting", "connected"]
    for page in (advisor, shopper):
        assert await js(page, "window.h.callErrors") == []
