"""The encoded-frame tap of the server media leg (the WebM writer it feeds is calls/webm.py).

aiortc's ``RTCRtpReceiver`` reassembles each encoded frame in its jitter buffer and puts
``(codec, JitterFrame)`` on a private ``queue.Queue`` that a decoder thread reads. We replace
that queue (before ``receive()`` starts the thread) with ``EncodedFrameTap``: frames go to our
callback on the event loop, and the decoder thread waits idle until the receiver stops. Nothing
is decoded, nothing is re-encoded, and the remote track's own queue never fills (it only ever
gets the end-of-stream marker), so an unread track cannot buffer without bound.

The tap also gives each frame its time on the sender's clock: the receiver's RTCP sender
reports (SR: an NTP wall-clock time and the RTP timestamp of the same instant, per SSRC) are
caught by wrapping ``RTCRtpReceiver._handle_rtcp_packet``, and the frame's absolute RTP
timestamp is the jitter buffer's (made relative by aiortc's ``TimestampMapper``) plus the
mapper's origin. The writer places audio and video by these times, as any RTP receiver
synchronises lip sync (RFC 3550 §6.4.1), not by when each track's first frame arrived.

These are aiortc internals: aiortc is pinned exactly in pyproject.toml and
``tests/unit/test_recording_hook.py`` fails loudly, naming what moved, if they change.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpTransceiver
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtcpSrPacket

# The name-mangled private attribute holding the receiver's decoder input queue.
DECODER_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
DECODER_THREAD_ATTR = "_RTCRtpReceiver__decoder_thread"
# The receiver's TimestampMapper (``_origin``: the first RTP timestamp it saw, which it
# subtracts from every frame's), its RTCP entry point and its RTX-to-media SSRC table.
TIMESTAMP_MAPPER_ATTR = "_RTCRtpReceiver__timestamp_mapper"
RTCP_HANDLER_ATTR = "_handle_rtcp_packet"
RTX_SSRC_ATTR = "_RTCRtpReceiver__rtx_ssrc"
# The transceiver's negotiated codecs (set by setRemoteDescription, used by the answer and the
# receiver).
CODECS_ATTR = "_codecs"
VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000
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
    # When the sender captured it, in seconds on the sender's NTP clock (from its RTCP sender
    # reports); None until the first report for the track arrived.
    sender_time: float | None = None

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


NTP_FRACTION = 1 << 32
RTP_WRAP = 1 << 32


# A kept report is replaced by a later one that maps no earlier, once it is this old (the
# sender's RTP clock drifts a little against its wall clock).
REPORT_FRESH_SECONDS = 10.0


class SenderClock:
    """The sender's clock for one track, from its RTCP sender reports: each report pairs an
    NTP time with the RTP timestamp of the same instant, so any frame's RTP timestamp maps to
    the sender's wall clock. Audio and video of one browser share that wall clock, which is
    what lines them up in the file.

    A sender notes a report's time when it sends a packet, which can only be late (a busy
    sender): of the recent reports, the one mapping RTP time *earliest* is the truest, so a
    report that maps later than the kept one does not replace it while that is fresh."""

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.reports = 0
        self._ntp = 0.0
        self._rtp = 0

    def report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        ntp = ntp_timestamp / NTP_FRACTION
        if self.reports:
            predicted = self.sender_time(rtp_timestamp)
            assert predicted is not None
            if ntp >= predicted and ntp - self._ntp < REPORT_FRESH_SECONDS:
                self.reports += 1
                return
        self._ntp = ntp
        self._rtp = rtp_timestamp
        self.reports += 1

    def sender_time(self, rtp_timestamp: int) -> float | None:
        """Seconds on the sender's NTP clock for an (absolute, 32-bit) RTP timestamp."""
        if not self.reports:
            return None
        diff = (rtp_timestamp - self._rtp) % RTP_WRAP
        if diff >= RTP_WRAP // 2:
            diff -= RTP_WRAP  # a frame from before the report
        return self._ntp + diff / self.clock_rate


def watch_sender_reports(receiver: RTCRtpReceiver, clock: SenderClock) -> None:
    """Feed the receiver's RTCP sender reports for its media SSRC to ``clock`` (aiortc itself
    keeps only their NTP part, for its receiver reports)."""
    inner = getattr(receiver, RTCP_HANDLER_ATTR)
    rtx_ssrcs: dict[int, int] = getattr(receiver, RTX_SSRC_ATTR)

    async def handle_rtcp(packet: Any) -> None:
        # A retransmission stream's reports are not the media's timing.
        if isinstance(packet, RtcpSrPacket) and packet.ssrc not in rtx_ssrcs:
            clock.report(packet.sender_info.ntp_timestamp, packet.sender_info.rtp_timestamp)
        await inner(packet)

    # An instance attribute: the DTLS transport calls ``recipient._handle_rtcp_packet(packet)``.
    setattr(receiver, RTCP_HANDLER_ATTR, handle_rtcp)


class EncodedFrameTap:
    """Stands in for the receiver's decoder queue: ``put`` is called on the event loop with
    ``(codec, JitterFrame)`` or ``None`` (stop); ``get`` is called by the idle decoder thread,
    which we keep waiting until stop, then hand the ``None`` that ends the remote track."""

    def __init__(
        self, kind: str, sink: FrameSink, mapper: Any = None, clock: SenderClock | None = None
    ) -> None:
        self.kind = kind
        self.sink = sink
        self.frames = 0
        # The receiver's TimestampMapper (absolute RTP timestamps) and the sender's clock.
        self.mapper = mapper
        self.clock = clock or SenderClock(VIDEO_CLOCK if kind == "video" else AUDIO_CLOCK)
        self._stopped = threading.Event()

    def put(self, item: Any) -> None:
        if item is None:
            self._stopped.set()
            return
        codec, frame = item
        self.frames += 1
        timestamp = int(frame.timestamp)
        sender_time = None
        origin = getattr(self.mapper, "_origin", None)
        if origin is not None and self.clock.reports:
            sender_time = self.clock.sender_time((timestamp + origin) % RTP_WRAP)
        self.sink(
            EncodedFrame(
                kind=self.kind,
                codec=str(codec.name),
                data=bytes(frame.data),
                timestamp=timestamp,
                arrival=time.monotonic(),
                sender_time=sender_time,
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
    the receiver starts (between setRemoteDescription and the transport connecting). The
    frames carry their sender time once the track's first RTCP sender report arrived."""
    needed = (
        DECODER_QUEUE_ATTR,
        DECODER_THREAD_ATTR,
        TIMESTAMP_MAPPER_ATTR,
        RTCP_HANDLER_ATTR,
        RTX_SSRC_ATTR,
    )
    missing = [name for name in needed if not hasattr(receiver, name)]
    if missing or not hasattr(getattr(receiver, TIMESTAMP_MAPPER_ATTR), "_origin"):
        raise HookPointMoved(
            f"aiortc RTCRtpReceiver has no {', '.join(missing) or TIMESTAMP_MAPPER_ATTR + '._origin'}: "
            "the recording tap cannot attach (was aiortc upgraded? it is pinned exactly for this reason)"
        )
    if getattr(receiver, DECODER_THREAD_ATTR) is not None:
        raise HookPointMoved("the receiver's decoder already started; the tap must be installed first")
    tap = EncodedFrameTap(kind, sink, getattr(receiver, TIMESTAMP_MAPPER_ATTR))
    watch_sender_reports(receiver, tap.clock)
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
