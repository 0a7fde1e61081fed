"""The WebM stream-copy writer of the server media leg: one participant's encoded VP8 and
Opus frames into one file, to the Matroska/WebM codec mappings, without re-encoding.

What the file states:
- the Opus track carries its ``OpusHead`` as CodecPrivate (19 bytes, pre-skip 312 at 48 kHz),
  with CodecDelay (the pre-skip, 6.5 ms) and SeekPreRoll (80 ms): the stream is given a libopus
  *encoder* context, opened when the file starts, which writes exactly that header and padding
  (the RTP stream carries no OpusHead; a browser's encoder has the same 312-sample lookahead)
  — the encoder itself never encodes anything, every packet is the sender's own;
- the video track's pixel size is the first key frame's (read from its VP8 frame header);
- both tracks are flagged default;
- audio and video are placed by the sender's own clock (its RTCP sender reports, see
  ``calls/media.py``): the file waits for a report of each kind (at most
  ``SYNC_WAIT_SECONDS``, keeping the frames meanwhile) and falls back to arrival times only
  if none comes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from livedesk.calls.media import AUDIO_CLOCK, EncodedFrame, vp8_size

# Milliseconds: WebM (Matroska) stores timestamps in ms anyway.
TIME_BASE = Fraction(1, 1000)
# Audio that arrives before the first video keyframe is kept until the file opens; this bounds
# it (10 s of Opus at 50 packets/s) should video never start.
MAX_PENDING_AUDIO = 500
# How long the file waits, once it could start, for the sender reports that line audio and
# video up. A browser's first reports come within the first seconds (audio reports are the
# sparser: libwebrtc's audio report interval is 5 s against video's 1 s); aiortc's within 1.5 s.
SYNC_WAIT_SECONDS = 5.0
# Once every kind has its sender time, a little longer for a second report of each (aiortc
# sends one every 0.5–1.5 s): the truest of them places the tracks (see SenderClock).
SYNC_SETTLE_SECONDS = 1.0
# The Opus encoder's lookahead (RFC 7845 §4.2): a decoder's output starts this many samples
# late, which CodecDelay tells players to take off again. An RTP timestamp is the frame's
# first *input* sample, so an audio block is placed this much earlier than its RTP time says
# (FFmpeg adds CodecDelay back to the stored block timestamp).
OPUS_PRE_SKIP = 312
CLUSTER_OPTIONS = {"cluster_time_limit": "1000", "flush_packets": "1"}
DEFAULT = av.stream.Disposition.default


@dataclass
class WriterStats:
    video_frames: int = 0
    audio_frames: int = 0
    dropped_before_keyframe: int = 0
    bytes_in: int = 0
    # True when audio and video were placed by the sender's reports, False by arrival.
    synced: bool = False


class WebmWriter:
    """Writes one participant's encoded VP8 and Opus frames to a WebM file by stream copy.

    The file can start on the first video key frame (with ``expect_video=False``, a voice call,
    on the first audio frame); audio that comes earlier is kept for it. It starts once every
    expected kind has a sender time (or ``SYNC_WAIT_SECONDS`` later, or at close). Timestamps:
    one millisecond clock from the earliest written frame; each track's first frame is placed
    by its sender time, the rest by its RTP timestamps.
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
        self._pending: list[EncodedFrame] = []
        self._pending_audio = 0
        self._keyframe: EncodedFrame | None = None
        self._startable_at: float | None = None
        # Sender time of the file's 0 ms (None: placed by arrival).
        self._start_sender: float | None = None
        # Per kind: (first RTP timestamp, ms offset of that frame from the file start).
        self._anchor: dict[str, tuple[int, int]] = {}
        self._last_pts: dict[str, int] = {}
        self._closed = False

    @property
    def opened(self) -> bool:
        return self._container is not None

    @property
    def has_keyframe(self) -> bool:
        """A key frame arrived (no more picture-loss requests needed to start)."""
        return self._keyframe is not None

    @property
    def duration_ms(self) -> int:
        return max(self._last_pts.values(), default=0)

    def write(self, frame: EncodedFrame) -> None:
        if self._closed:
            return
        self.stats.bytes_in += len(frame.data)
        if self.opened:
            self._mux(frame)
            return
        if frame.kind == "video":
            if self._keyframe is None:
                if not frame.keyframe:
                    self.stats.dropped_before_keyframe += 1
                    return
                self._keyframe = frame
                self._startable_at = frame.arrival
        else:
            if self._pending_audio >= MAX_PENDING_AUDIO:
                oldest = next(i for i, f in enumerate(self._pending) if f.kind == "audio")
                del self._pending[oldest]
                self._pending_audio -= 1
            self._pending_audio += 1
            if not self.expect_video and self._startable_at is None:
                self._startable_at = frame.arrival
        self._pending.append(frame)
        if self._startable_at is not None:
            waited = frame.arrival - self._startable_at
            if waited >= SYNC_WAIT_SECONDS or (waited >= SYNC_SETTLE_SECONDS and self._synced()):
                self._start()

    def _expected(self) -> list[str]:
        return [k for k, on in (("video", self.expect_video), ("audio", self.expect_audio)) if on]

    def _synced(self) -> bool:
        timed = {f.kind for f in self._pending if f.sender_time is not None}
        return all(kind in timed for kind in self._expected())

    def _start(self) -> None:
        """Open the file and write what waited: placed by sender time when every kind that
        waited has one, else by arrival."""
        pending, self._pending = self._pending, []
        self._pending_audio = 0
        kinds = {f.kind for f in pending}
        bases: dict[str, float] = {}
        for f in pending:
            if f.sender_time is not None:
                # The sender time of this track's RTP timestamp 0 (as presented): the earliest
                # any report gave is the truest (see SenderClock).
                base = _presented(f, f.sender_time) - f.timestamp / f.clock_rate
                bases[f.kind] = min(base, bases.get(f.kind, base))
        if kinds and kinds <= bases.keys():
            firsts = {k: next(f for f in pending if f.kind == k) for k in kinds}
            self._start_sender = min(bases[k] + firsts[k].timestamp / firsts[k].clock_rate for k in kinds)
            self.stats.synced = True
            for kind, first in firsts.items():
                at = bases[kind] + first.timestamp / first.clock_rate - self._start_sender
                self._anchor[kind] = (first.timestamp, round(at * 1000))
        self._open(min((f.arrival for f in pending), default=time.monotonic()))
        for f in pending:
            self._mux(f)

    def _open(self, first_arrival: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Short clusters, each written out when it closes: if this process dies mid-call, the
        # part on the (shared) spool is readable up to the last second, and another process
        # salvages it (recording/recorder.py).
        container = av.open(str(self.path), mode="w", format="webm", options=CLUSTER_OPTIONS)
        if self._keyframe is not None and self.expect_video:
            width, height = vp8_size(self._keyframe.data)
            self._video = container.add_mux_stream("vp8", rate=30, width=width, height=height)
            self._video.time_base = TIME_BASE
            self._video.disposition = DEFAULT
        if self.expect_audio:
            self._audio = add_opus_stream(container)
        self._container = container
        self.started_monotonic = first_arrival
        self.started_wall = time.time() - (time.monotonic() - first_arrival)

    def _mux(self, frame: EncodedFrame) -> None:
        stream = self._video if frame.kind == "video" else self._audio
        if stream is None:
            return
        assert self.started_monotonic is not None
        anchor = self._anchor.get(frame.kind)
        if anchor is None:
            if self._start_sender is not None and frame.sender_time is not None:
                offset = round((_presented(frame, frame.sender_time) - self._start_sender) * 1000)
            else:
                offset = round((frame.arrival - self.started_monotonic) * 1000)
            anchor = self._anchor[frame.kind] = (frame.timestamp, max(0, offset))
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
        """Finish the file (starting it with what waited, if it had not started); False if
        nothing was ever written (no file exists then)."""
        if self._closed:
            return self.opened
        self._closed = True
        if self._container is None:
            if self._startable_at is None:
                return False
            self._start()
        self._container.close()
        return True


def _presented(frame: EncodedFrame, sender_time: float) -> float:
    """When the frame's decoded output starts, on the sender's clock."""
    return sender_time - OPUS_PRE_SKIP / AUDIO_CLOCK if frame.kind == "audio" else sender_time


def add_opus_stream(container: Any) -> Any:
    """An Opus stream whose header follows the WebM mapping: a libopus encoder context (opened
    with the file, never fed) gives the OpusHead CodecPrivate and the 312-sample initial
    padding that FFmpeg's Matroska muxer writes as CodecDelay, beside SeekPreRoll."""
    stream = container.add_stream("libopus", rate=AUDIO_CLOCK, layout="stereo")
    stream.time_base = TIME_BASE
    stream.disposition = DEFAULT
    return stream
