"""Server media legs: one receive-only aiortc peer connection per call participant, alive only
while the call is recorded or monitored — one leg serves both (no double upload).

A ``Leg`` taps its receivers' encoded frames (``calls/media.py``) and hands each frame to its
sinks: the recorder's WebM writer, and any ``EncodedPacketTrack`` a subscriber opened (a track
whose ``recv()`` returns ``av.Packet``, which aiortc sends to a third peer without encoding —
what silent monitoring needs). ``request_keyframe()`` sends a PLI to the participant's browser.

``LegRegistry`` keeps the legs of this process by call id (the consultation's) and participant
(``"shopper"`` or ``"advisor"``). A leg is *held* by the purposes using it (``"recording"``,
``"monitoring"``): ``offer`` opens a leg and lets every attacher (the recorder, the monitoring
hub) take it; ``release`` drops a purpose and closes the legs nobody holds any more. A call's
legs all live in one process (``calls/placement.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

import av
from aiohttp import web
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from livedesk.calls.ice import ice_servers
from livedesk.calls.media import (
    RECORDABLE,
    EncodedFrame,
    EncodedFrameTap,
    FrameSink,
    enlarge_receive_buffers,
    install_tap,
    request_keyframe,
    restrict_codecs,
    throttle_remb,
)
from livedesk.kit.logging import get_logger
from livedesk.settings import Settings

log = get_logger("livedesk.legs")

PARTICIPANTS = ("shopper", "advisor")
# A subscriber that falls this many frames behind loses the oldest (and asks for a key frame).
SUBSCRIBER_QUEUE = 90
LegClosed = Callable[["Leg"], Awaitable[None]]
# Called with every newly answered leg; adds its purpose to ``leg.holds`` if it uses the leg.
Attacher = Callable[["Leg"], Awaitable[None]]


def rtc_configuration(settings: Settings, user: str) -> RTCConfiguration:
    """ICE servers from settings only: an explicit (possibly empty) list, so aiortc never falls
    back to its built-in public STUN server."""
    servers = [
        RTCIceServer(urls=entry["urls"], username=entry.get("username"), credential=entry.get("credential"))
        for entry in ice_servers(settings, user)
    ]
    return RTCConfiguration(iceServers=servers)


class EncodedPacketTrack(MediaStreamTrack):
    """A participant's encoded frames of one kind as ``av.Packet``s: add it to another peer
    connection and aiortc forwards them without encoding."""

    def __init__(self, leg: Leg, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._leg = leg
        self._queue: asyncio.Queue[EncodedFrame | None] = asyncio.Queue()
        self.dropped = 0

    def push(self, frame: EncodedFrame | None) -> None:
        if frame is not None and self._queue.qsize() >= SUBSCRIBER_QUEUE:
            self._queue.get_nowait()
            self.dropped += 1
            self._leg.spawn_keyframe_request()
        self._queue.put_nowait(frame)

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = Fraction(1, frame.clock_rate)
        packet.is_keyframe = frame.keyframe or frame.kind == "audio"
        return packet

    def stop(self) -> None:
        self._leg.unsubscribe(self)
        super().stop()


class Leg:
    """One participant's receive-only peer connection and what listens to its frames."""

    def __init__(
        self,
        call_id: uuid.UUID,
        participant: str,
        configuration: RTCConfiguration,
        on_closed: LegClosed | None,
    ) -> None:
        self.call_id = call_id
        self.participant = participant
        self.id = uuid.uuid4()
        self.pc = RTCPeerConnection(configuration)
        self.kinds: set[str] = set()
        self.receivers: dict[str, RTCRtpReceiver] = {}
        self.taps: dict[str, EncodedFrameTap] = {}
        self.sinks: list[FrameSink] = []
        self.subscribers: list[EncodedPacketTrack] = []
        self.frames: dict[str, int] = {"audio": 0, "video": 0}
        self.closed = asyncio.Event()
        # The purposes using this leg ("recording", "monitoring"); none left: it closes.
        self.holds: set[str] = set()
        self._on_closed = on_closed
        self._tasks: set[asyncio.Task[Any]] = set()
        self.pc.on("connectionstatechange", self._state_changed)

    @property
    def state(self) -> str:
        return str(self.pc.connectionState)

    def add_sink(self, sink: FrameSink) -> None:
        self.sinks.append(sink)

    def remove_sink(self, sink: FrameSink) -> None:
        if sink in self.sinks:
            self.sinks.remove(sink)

    def subscribe(self, kind: str) -> EncodedPacketTrack:
        """A track of this participant's ``kind`` frames, from now on; ask for a key frame
        (``request_keyframe``) so a video subscriber can start decoding at once."""
        track = EncodedPacketTrack(self, kind)
        self.subscribers.append(track)
        return track

    def unsubscribe(self, track: EncodedPacketTrack) -> None:
        if track in self.subscribers:
            self.subscribers.remove(track)

    def _deliver(self, frame: EncodedFrame) -> None:
        self.frames[frame.kind] = self.frames.get(frame.kind, 0) + 1
        for sink in self.sinks:
            try:
                sink(frame)
            except Exception:
                # One broken sink (a full disk) must not take the others or the leg down.
                log.exception("leg sink failed", call_id=str(self.call_id), participant=self.participant)
                self.sinks.remove(sink)
                break
        for track in self.subscribers:
            if track.kind == frame.kind:
                track.push(frame)

    async def answer(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Accept the browser's send-only offer; every incoming track is tapped before the
        receivers start, and consumed so it never buffers."""
        if offer.type != "offer":
            raise ValueError("expected an SDP offer")
        await self.pc.setRemoteDescription(offer)
        for transceiver in self.pc.getTransceivers():
            kind = transceiver.kind
            if kind in self.taps or transceiver.receiver is None:
                continue
            if kind not in RECORDABLE:
                continue
            restrict_codecs(transceiver)
            transceiver.direction = "recvonly"
            self.receivers[kind] = transceiver.receiver
            self.taps[kind] = install_tap(transceiver.receiver, kind, self._deliver)
            throttle_remb(transceiver.receiver)
            self.kinds.add(kind)
            track = transceiver.receiver.track
            if track is not None:
                self._spawn(self._drain(track))
        if not self.taps:
            raise ValueError("the offer sends no audio or video")
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        enlarge_receive_buffers(self.pc)
        local = self.pc.localDescription
        return RTCSessionDescription(sdp=local.sdp, type=local.type)

    async def _drain(self, track: MediaStreamTrack) -> None:
        # The tap keeps the track's queue empty except for its end marker; reading it anyway
        # honours aiortc's rule that every remote track is consumed.
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()

    async def request_keyframe(self) -> bool:
        """Send a PLI to the participant; False when no video has arrived yet."""
        receiver = self.receivers.get("video")
        if receiver is None:
            return False
        return await request_keyframe(receiver)

    def spawn_keyframe_request(self) -> None:
        self._spawn(self.request_keyframe())

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _state_changed(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            await self.close()

    async def close(self) -> None:
        """Close the peer connection (idempotent); the on-closed callback runs once."""
        if self.closed.is_set():
            return
        self.closed.set()
        await self.pc.close()
        for track in list(self.subscribers):
            track.push(None)
        for task in list(self._tasks):
            task.cancel()
        if self._on_closed is not None:
            try:
                await self._on_closed(self)
            except Exception:
                log.exception("leg close handler failed", call_id=str(self.call_id))


class LegRegistry:
    """This process's legs: at most one per (call, participant); a new offer from the same
    participant (a reload) replaces the old leg."""

    def __init__(self) -> None:
        self._legs: dict[uuid.UUID, dict[str, Leg]] = {}
        self.attachers: list[Attacher] = []
        # Run after a leg closed (any leg: replaced, failed, released).
        self.closers: list[LegClosed] = []

    def get(self, call_id: uuid.UUID, participant: str) -> Leg | None:
        return self._legs.get(call_id, {}).get(participant)

    def legs_of(self, call_id: uuid.UUID) -> list[Leg]:
        return list(self._legs.get(call_id, {}).values())

    def all(self) -> list[Leg]:
        return [leg for legs in self._legs.values() for leg in legs.values()]

    async def open(
        self,
        call_id: uuid.UUID,
        participant: str,
        configuration: RTCConfiguration,
        *,
        on_closed: LegClosed | None = None,
    ) -> Leg:
        """A fresh leg for the participant (closing the one it replaces). Add sinks, then call
        ``answer`` with the browser's offer."""
        if participant not in PARTICIPANTS:
            raise ValueError(f"unknown participant {participant!r}")
        old = self.get(call_id, participant)
        if old is not None:
            await old.close()

        async def closed(leg: Leg) -> None:
            legs = self._legs.get(call_id, {})
            if legs.get(participant) is leg:
                del legs[participant]
                if not legs:
                    self._legs.pop(call_id, None)
            for closer in self.closers:
                await closer(leg)
            if on_closed is not None:
                await on_closed(leg)

        leg = Leg(call_id, participant, configuration, closed)
        self._legs.setdefault(call_id, {})[participant] = leg
        return leg

    async def offer(
        self,
        call_id: uuid.UUID,
        participant: str,
        configuration: RTCConfiguration,
        offer_sdp: str,
        *,
        unneeded: Exception,
    ) -> RTCSessionDescription:
        """A participant's browser offers its send-only leg: answer it (replacing the leg it had)
        and let every attacher take it; ``unneeded`` is raised (and the leg closed) when nothing
        does — neither recorded nor monitored any more."""
        leg = await self.open(call_id, participant, configuration)
        try:
            answer = await leg.answer(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            for attach in self.attachers:
                await attach(leg)
            if not leg.holds:
                raise unneeded
        except BaseException:
            await leg.close()
            raise
        return answer

    async def release(self, call_id: uuid.UUID, purpose: str) -> None:
        """``purpose`` no longer uses the call's legs; those nobody holds close."""
        for leg in self.legs_of(call_id):
            leg.holds.discard(purpose)
            if not leg.holds:
                await leg.close()

    async def close_call(self, call_id: uuid.UUID) -> None:
        for leg in self.legs_of(call_id):
            await leg.close()

    async def close_all(self) -> None:
        for leg in self.all():
            await leg.close()


LEGS = web.AppKey("legs", LegRegistry)


async def legs_ctx(app: web.Application) -> Any:
    """cleanup_ctx: the registry, and every leg closed at shutdown."""
    app[LEGS] = LegRegistry()
    yield
    await app[LEGS].close_all()
