"""The media relay of live call monitoring: tracks that forward a participant's encoded
packets to a supervisor's peer connection without decoding or re-encoding, and follow the
participant's server leg when it is replaced (a reload) or arrives after the supervisor.

A supervisor's connection is answered before the participants' monitoring legs exist (their
browsers open them when told to), so each of its four senders gets a ``MonitorTrack`` at once;
the track starts forwarding when a leg is attached and waits again (never ends) when that leg
closes, which would otherwise stop aiortc's sender for good.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpsender import RTCRtpSender

from livedesk.calls.legs import EncodedPacketTrack, Leg

# RTP clock steps inserted between the last packet of one leg and the first of the next, so
# the receiver's timestamps keep increasing (one video frame at 30 fps, one 20 ms Opus frame).
STEP = {"video": 3000, "audio": 960}
# Key frame requests for a subscriber that has not seen one yet: this often, this long.
KEYFRAME_RETRY_SECONDS = 0.25
KEYFRAME_RETRY_FOR_SECONDS = 10.0


class MonitorTrack(MediaStreamTrack):
    """One participant's audio or video for one supervisor, fed by whichever leg is current."""

    def __init__(self, participant: str, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.participant = participant
        self.leg: Leg | None = None
        self.packets = 0
        self.keyframes = 0
        self._source: EncodedPacketTrack | None = None
        self._attached = asyncio.Event()
        self._offset = 0
        self._last_pts: int | None = None
        self._rebase = True
        self._keyframe_task: asyncio.Task[None] | None = None

    def attach(self, leg: Leg) -> None:
        """Forward ``leg``'s frames from now on (dropping the previous leg's subscription)."""
        self.detach()
        self.leg = leg
        self._source = leg.subscribe(self.kind)
        self._rebase = True
        self._attached.set()
        if self.kind == "video":
            self._keyframe_task = asyncio.ensure_future(self._until_keyframe(leg))

    def detach(self) -> None:
        source, self._source = self._source, None
        self.leg = None
        self._attached.clear()
        if self._keyframe_task is not None:
            self._keyframe_task.cancel()
            self._keyframe_task = None
        if source is not None:
            # Wakes a recv() waiting on it; the leg forgets the subscription.
            source.push(None)
            source.stop()

    async def _until_keyframe(self, leg: Leg) -> None:
        # A decoder can only start on a key frame: ask the participant's browser for one now
        # and again until it came through (the leg may not have video yet when attached).
        seen = self.keyframes
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KEYFRAME_RETRY_FOR_SECONDS
        while self.keyframes == seen and not leg.closed.is_set() and loop.time() < deadline:
            await leg.request_keyframe()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(leg.closed.wait(), KEYFRAME_RETRY_SECONDS)

    def request_keyframe(self) -> None:
        """The supervisor's browser lost the picture (PLI/FIR on our sender): ask the source."""
        if self.leg is not None and self.kind == "video":
            self.leg.spawn_keyframe_request()

    async def recv(self) -> av.Packet[Any]:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            source = self._source
            if source is None:
                await self._attached.wait()
                continue
            try:
                packet = await source.recv()
            except MediaStreamError:
                # That leg closed (or was replaced): wait for the next one, keep the sender.
                if self._source is source:
                    self._source = None
                    self.leg = None
                    self._attached.clear()
                continue
            return self._restamp(packet)

    def _restamp(self, packet: av.Packet[Any]) -> av.Packet[Any]:
        pts = int(packet.pts or 0)
        if self._rebase:
            self._rebase = False
            if self._last_pts is not None:
                self._offset = self._last_pts + STEP[self.kind] - pts
        packet.pts = pts + self._offset
        self._last_pts = int(packet.pts)
        self.packets += 1
        if self.kind == "video" and packet.is_keyframe:
            self.keyframes += 1
        return packet

    def stop(self) -> None:
        self.detach()
        super().stop()
        # A recv() waiting for a leg sees the track ended.
        self._attached.set()


def forward_picture_loss(sender: RTCRtpSender, track: MonitorTrack) -> None:
    """aiortc's sender answers a PLI/FIR only by asking its own encoder for a key frame
    (``_send_keyframe``), which a forwarded stream does not have: pass it on to the
    participant's leg instead, so the supervisor's picture comes back at once."""
    original: Callable[[], None] = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        track.request_keyframe()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]
