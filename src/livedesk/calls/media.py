"""The encoded-frame tap and the WebM stream-copy writer of the server media leg.

aiortc's ``RTCRtpReceiver`` reassembles each encoded frame in its jitter buffer and puts
``(codec, JitterFrame)`` on a private ``queue.Queue`` that a decoder thread reads. We replace
that queue (before ``receive()`` starts the thread) with ``EncodedFrameTap``: frames go to our
callback on the event loop, and the decoder thread waits idle until the receiver stops. Nothing
is decoded, nothing is re-encoded, and the remote track's own queue never fills (it only ever
gets the end-of-stream marker), so an unread track cannot buffer without bound.

These are aiortc internals: aiortc is pinned exactly in pyproject.toml and
``tests/unit/test_recording_hook.py`` fails loudly, naming what moved, if they change.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCRtpTransceiver
from aiortc.rtcrtpreceiver import RTCRtpReceiver

# The name-mangled private attribute holding the receiver's decoder input queue.
DECODER_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
DECODER_THREAD_ATTR = "_RTCRtpReceiver__decoder_thread"
# The transceiver's negotiated codecs (set by setRemoteDescription, used by the answer and the
# receiver).
CODECS_ATTR = "_codecs"
VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000
# Milliseconds: WebM (Matroska) stores timestamps in ms anyway.
TIME_BASE = Fraction(1, 1000)
# Audio that arrives before the first video keyframe is kept until the file opens; this bounds
# it (10 s of Opus at 50 packets/s) should video never start.
MAX_PENDING_AUDIO = 500
# About four seconds of a 2 Mbit/s participant stream.
RECEIVE_BUFFER_BYTES = 1 << 20


class HookPointMoved(RuntimeError):
    """aiortc no longer has the internals the tap relies on (see tests/unit/test_recording_hook.py)."""


@dataclass(frozen=True)
class EncodedFrame:
    """One encoded media frame as the jitter buffer produced it."""

    kind: str  # "audio" | "video"
    codec: str  # "VP8", "opus", …
    data: bytes
    # RTP timestamp since the track's first frame, in the codec clock (90 kHz video, 48 kHz audio).
    timestamp: int
    # time.monotonic() when the frame was complete here.
    arrival: float

    @property
    def keyframe(self) -> bool:
        return self.kind == "video" and is_vp8_keyframe(self.data)

    @property
    def clock_rate(self) -> int:
        return VIDEO_CLOCK if self.kind == "video" else AUDIO_CLOCK


FrameSink = Callable[[EncodedFrame], None]


def is_vp8_keyframe(data: bytes) -> bool:
    """RFC 6386 §9.1: bit 0 of the frame tag is 0 for a key frame, which also carries the
    start code 9d 01 2a."""
    return len(data) >= 10 and (data[0] & 0x01) == 0 and data[3:6] == b"\x9d\x01\x2a"


def vp8_size(data: bytes) -> tuple[int, int]:
    """Width and height from a VP8 key frame header."""
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


class EncodedFrameTap:
    """Stands in for the receiver's decoder queue: ``put`` is called on the event loop with
    ``(codec, JitterFrame)`` or ``None`` (stop); ``get`` is called by the idle decoder thread,
    which we keep waiting until stop, then hand the ``None`` that ends the remote track."""

    def __init__(self, kind: str, sink: FrameSink) -> None:
        self.kind = kind
        self.sink = sink
        self.frames = 0
        self._stopped = threading.Event()

    def put(self, item: Any) -> None:
        if item is None:
            self._stopped.set()
            return
        codec, frame = item
        self.frames += 1
        self.sink(
            EncodedFrame(
                kind=self.kind,
                codec=str(codec.name),
                data=bytes(frame.data),
                timestamp=int(frame.timestamp),
                arrival=time.monotonic(),
            )
        )

    def get(self, block: bool = True, timeout: float | None = None) -> None:
        self._stopped.wait()
        return None

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()


def install_tap(receiver: RTCRtpReceiver, kind: str, sink: FrameSink) -> EncodedFrameTap:
    """Route the receiver's encoded frames to ``sink`` instead of its decoder. Must run before
    the receiver starts (between setRemoteDescription and the transport connecting)."""
    if not hasattr(receiver, DECODER_QUEUE_ATTR) or not hasattr(receiver, DECODER_THREAD_ATTR):
        raise HookPointMoved(
            f"aiortc RTCRtpReceiver has no {DECODER_QUEUE_ATTR}/{DECODER_THREAD_ATTR}: the recording "
            "tap cannot attach (was aiortc upgraded? it is pinned exactly for this reason)"
        )
    if getattr(receiver, DECODER_THREAD_ATTR) is not None:
        raise HookPointMoved("the receiver's decoder already started; the tap must be installed first")
    tap = EncodedFrameTap(kind, sink)
    setattr(receiver, DECODER_QUEUE_ATTR, tap)
    return tap


# What the writer can put in WebM by stream copy, per kind.
RECORDABLE = {"video": "video/vp8", "audio": "audio/opus"}


def restrict_codecs(transceiver: RTCRtpTransceiver) -> None:
    """Keep only VP8 (with its retransmission codec) or Opus among the codecs negotiated from
    the browser's offer, so the answer picks them whatever the browser preferred; ValueError if
    the offer has none. Runs between setRemoteDescription and createAnswer (aiortc keeps the
    negotiated list in ``transceiver._codecs``)."""
    wanted = RECORDABLE[transceiver.kind]
    codecs = list(getattr(transceiver, CODECS_ATTR))
    base = [c for c in codecs if c.mimeType.lower() == wanted]
    if not base:
        raise ValueError(f"the offer's {transceiver.kind} has no {wanted.split('/')[1].upper()}")
    types = {c.payloadType for c in base}
    rtx = [c for c in codecs if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") in types]
    setattr(transceiver, CODECS_ATTR, base + rtx)


ESTIMATOR_ATTR = "_RTCRtpReceiver__remote_bitrate_estimator"
# At most one bandwidth estimate (RTCP REMB) per this long per receiver.
REMB_INTERVAL_MS = 500


class ThrottledEstimator:
    """Wraps the receiver's remote bitrate estimator so it answers with a REMB at most every
    ``REMB_INTERVAL_MS``. aiortc's estimator asks for one on *every* packet while it detects
    overuse — which a busy receiver that reads its socket late looks like — and each is a
    sendto: a storm that makes the receiver busier still. The browser still gets its
    congestion feedback, twice a second."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._last_ms: int | None = None

    def add(self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int) -> Any:
        remb = self.inner.add(
            arrival_time_ms=arrival_time_ms, abs_send_time=abs_send_time, payload_size=payload_size, ssrc=ssrc
        )
        if remb is None:
            return None
        if self._last_ms is not None and arrival_time_ms - self._last_ms < REMB_INTERVAL_MS:
            return None
        self._last_ms = arrival_time_ms
        return remb


def throttle_remb(receiver: RTCRtpReceiver) -> bool:
    """Install ``ThrottledEstimator`` on a video receiver (audio receivers have none)."""
    inner = getattr(receiver, ESTIMATOR_ATTR, None)
    if inner is None or isinstance(inner, ThrottledEstimator):
        return False
    setattr(receiver, ESTIMATOR_ATTR, ThrottledEstimator(inner))
    return True


def enlarge_receive_buffers(pc: RTCPeerConnection, size: int = RECEIVE_BUFFER_BYTES) -> int:
    """Give the leg's UDP sockets a bigger kernel receive buffer (capped by net.core.rmem_max),
    so a busy event loop that reads late loses no packets: the default (~200 KiB) overflows
    within tens of milliseconds with many legs in one process. Returns how many sockets were
    set. Reaches into aiortc/aioice internals (RTCIceTransport._connection._protocols), which
    tests/unit/test_recording_hook.py checks."""
    done = 0
    for transceiver in pc.getTransceivers():
        ice = getattr(getattr(transceiver.receiver, "transport", None), "transport", None)
        connection = getattr(ice, "_connection", None)
        for protocol in getattr(connection, "_protocols", []):
            transport = getattr(protocol, "transport", None)
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                done += 1
    return done


async def request_keyframe(receiver: RTCRtpReceiver) -> bool:
    """Send a picture-loss indication (RTCP PLI) for every source the receiver has heard;
    False if it has heard none yet."""
    sources = receiver.getSynchronizationSources()
    for source in sources:
        await receiver._send_rtcp_pli(source.source)
    return bool(sources)


@dataclass
class WriterStats:
    video_frames: int = 0
    audio_frames: int = 0
    dropped_before_keyframe: int = 0
    bytes_in: int = 0


CLUSTER_OPTIONS = {"cluster_time_limit": "1000", "flush_packets": "1"}


class WebmWriter:
    """Writes one participant's encoded VP8 and Opus frames to a WebM file by stream copy.

    The file opens on the first video key frame (its size fixes the video stream); audio that
    comes earlier waits for it. With ``expect_video=False`` (a voice call) it opens on the first
    audio frame. Timestamps: each track's RTP timestamps are placed on one millisecond clock that
    starts at the first written frame, anchored by the arrival time of the track's first frame.
    """

    def __init__(self, path: Path, *, expect_video: bool, expect_audio: bool = True) -> None:
        self.path = path
        self.expect_video = expect_video
        self.expect_audio = expect_audio
        self.stats = WriterStats()
        self.started_monotonic: float | None = None
        self.started_wall: float | None = None
        self._container: Any = None
        self._video: Any = None
        self._audio: Any = None
        self._pending_audio: list[EncodedFrame] = []
        # Per kind: (first RTP timestamp, ms offset of that frame from the file start).
        self._anchor: dict[str, tuple[int, int]] = {}
        self._last_pts: dict[str, int] = {}
        self._closed = False

    @property
    def opened(self) -> bool:
        return self._container is not None

    @property
    def duration_ms(self) -> int:
        return max(self._last_pts.values(), default=0)

    def write(self, frame: EncodedFrame) -> None:
        if self._closed:
            return
        self.stats.bytes_in += len(frame.data)
        if not self.opened:
            if frame.kind == "audio":
                if not self.expect_video:
                    self._open(None)
                else:
                    if len(self._pending_audio) >= MAX_PENDING_AUDIO:
                        self._pending_audio.pop(0)
                    self._pending_audio.append(frame)
                    return
            elif frame.keyframe:
                self._open(frame)
            else:
                self.stats.dropped_before_keyframe += 1
                return
            pending, self._pending_audio = self._pending_audio, []
            for early in pending:
                self._mux(early)
        self._mux(frame)

    def _open(self, keyframe: EncodedFrame | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Short clusters, each written out when it closes: if this process dies mid-call, the
        # part on the (shared) spool is readable up to the last second, and another process
        # salvages it (recording/recorder.py).
        container = av.open(str(self.path), mode="w", format="webm", options=CLUSTER_OPTIONS)
        if keyframe is not None:
            width, height = vp8_size(keyframe.data)
            self._video = container.add_mux_stream("vp8", rate=30, width=width, height=height)
            self._video.time_base = TIME_BASE
        if self.expect_audio:
            self._audio = container.add_mux_stream("opus", rate=AUDIO_CLOCK)
            self._audio.codec_context_channels = 2
            self._audio.time_base = TIME_BASE
        self._container = container
        first = keyframe.arrival if keyframe is not None else time.monotonic()
        if self._pending_audio:
            first = min(first, self._pending_audio[0].arrival)
        self.started_monotonic = first
        self.started_wall = time.time() - (time.monotonic() - first)

    def _mux(self, frame: EncodedFrame) -> None:
        stream = self._video if frame.kind == "video" else self._audio
        if stream is None:
            return
        assert self.started_monotonic is not None
        anchor = self._anchor.get(frame.kind)
        if anchor is None:
            offset = max(0, round((frame.arrival - self.started_monotonic) * 1000))
            anchor = self._anchor[frame.kind] = (frame.timestamp, offset)
        pts = anchor[1] + (frame.timestamp - anchor[0]) * 1000 // frame.clock_rate
        last = self._last_pts.get(frame.kind, -1)
        if pts <= last:
            # Matroska needs increasing timestamps per track; a reordered or repeated frame
            # gets the next millisecond rather than being dropped.
            pts = last + 1
        self._last_pts[frame.kind] = pts
        packet = av.Packet(frame.data)
        packet.stream = stream
        packet.pts = pts
        packet.dts = pts
        packet.time_base = TIME_BASE
        if frame.kind == "video":
            packet.is_keyframe = frame.keyframe
            self.stats.video_frames += 1
        else:
            packet.is_keyframe = True
            self.stats.audio_frames += 1
        self._container.mux(packet)

    def close(self) -> bool:
        """Finish the file; False if nothing was ever written (no file exists then)."""
        if self._closed:
            return self.opened
        self._closed = True
        if self._container is None:
            return False
        self._container.close()
        return True
