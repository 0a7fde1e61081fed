"""The recorded WebM to the Matroska/WebM codec mappings, checked with the outside world's
tools (ffprobe, mkvinfo/mkvmerge from MKVToolNix, PyAV decoding), on a call recorded through
real aiortc peer connections (issue 23 item 5).

The source is synchronised: in every lap of the sample a bright video frame (the flash) and
a tone (the beep) start at the same instant, on one clock for both tracks, the way a camera and
a microphone share the browser's clock. Its first 0.4 s are 640×480, the rest 320×240 (a browser
scaling its video down), so the header must state the size most frames have."""

from __future__ import annotations

import array
import json
import math
import shutil
import struct
import subprocess
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from livedesk.calls.media import is_vp8_keyframe
from livedesk.calls.media_sample import PacketTrack, SamplePackets
from livedesk.models import Role
from livedesk.recording.recorder import RECORDER
from livedesk.settings import Settings
from tests.conftest import SocketClient, login, wait_until

FPS = 30
LAP_SECONDS = 3.0
# The flash and the beep, seconds into each lap.
SYNC_AT = 1.0
BIG_SECONDS = 0.4
BIG = (640, 480)
SMALL = (320, 240)
TOLERANCE_MS = 20


def _encode_video() -> list[tuple[float, bytes, bool]]:
    rows: list[tuple[float, bytes, bool]] = []
    frames = int(LAP_SECONDS * FPS)
    big = int(BIG_SECONDS * FPS)
    for first, last, (width, height) in ((0, big, BIG), (big, frames, SMALL)):
        # A fresh encoder per size: what a browser's encoder does when it rescales (a key frame).
        codec: Any = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height = width, height
        codec.pix_fmt = "yuv420p"
        codec.time_base = Fraction(1, FPS)
        codec.bit_rate = 400_000
        codec.gop_size = FPS
        codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        flash_from, flash_to = round(SYNC_AT * FPS), round((SYNC_AT + 0.2) * FPS)
        chroma = bytes([128]) * (width // 2 * height // 2)
        packets = []
        for i in range(first, last):
            frame = av.VideoFrame(width, height, "yuv420p")
            luma = 235 if flash_from <= i < flash_to else 16
            frame.planes[0].update(bytes([luma]) * (width * height))
            frame.planes[1].update(chroma)
            frame.planes[2].update(chroma)
            frame.pts = i
            packets += codec.encode(frame)
        packets += codec.encode(None)
        rows += [(p.pts / FPS, bytes(p), is_vp8_keyframe(bytes(p))) for p in packets]
    return sorted(rows, key=lambda r: r[0])


def _encode_audio() -> list[tuple[float, bytes, bool]]:
    codec: Any = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48_000
    codec.layout = "stereo"
    codec.format = "s16"
    samples = 960
    beep_from, beep_to = round(SYNC_AT * 48_000), round((SYNC_AT + 0.2) * 48_000)
    packets = []
    for i in range(int(LAP_SECONDS * 48_000 / samples)):
        pcm = bytearray()
        for n in range(i * samples, (i + 1) * samples):
            value = (
                int(0.5 * 32767 * math.sin(2 * math.pi * 1000 * n / 48_000))
                if beep_from <= n < beep_to
                else 0
            )
            pcm += struct.pack("<hh", value, value)
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
        frame.planes[0].update(bytes(pcm))
        frame.sample_rate = 48_000
        frame.pts = i * samples
        frame.time_base = Fraction(1, 48_000)
        packets += codec.encode(frame)
    packets += codec.encode(None)
    # FFmpeg dates an Opus packet by its decoded output (input time minus the encoder's
    # lookahead); RTP dates it by its first input sample, as a browser sends it.
    lookahead = -packets[0].pts
    return [((p.pts + lookahead) / 48_000, bytes(p), True) for p in packets]


@pytest.fixture(scope="module")
def synced_sample() -> SamplePackets:
    return SamplePackets(video=_encode_video(), audio=_encode_audio(), duration=LAP_SECONDS)


class SyncedTrack(PacketTrack):
    """A ``PacketTrack`` paced on a clock shared with its other kind: one capture clock."""

    def __init__(self, sample: SamplePackets, kind: str, start: dict[str, float]) -> None:
        super().__init__(sample, kind)
        self._start = start

    async def recv(self) -> av.Packet[Any]:
        if self._t0 is None:
            self._t0 = self._start.setdefault("t0", time.monotonic())
        return await super().recv()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "presence_grace_seconds": 0.0,
            "recording_retention_check_seconds": 0,
            "recording_consent_policy": "announce",
            "webhook_poll_seconds": 0,
        }
    )


async def _send_leg(sock: SocketClient, recording_id: str, sample: SamplePackets) -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    start: dict[str, float] = {}
    for kind in ("video", "audio"):
        pc.addTransceiver(SyncedTrack(sample, kind, start), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await sock.ok(
        "leg.offer", {"recording_id": recording_id, "type": "offer", "sdp": pc.localDescription.sdp}
    )
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    return pc


def _tool(*args: str) -> str:
    assert shutil.which(args[0]), f"{args[0]} is not installed: scripts/test installs ffmpeg and mkvtoolnix"
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout  # noqa: S603


def _mkvinfo_tracks(path: Path) -> list[str]:
    """mkvinfo's text, one block per track."""
    text = _tool("mkvinfo", str(path))
    return text.split("| + Track\n")[1:]


def _onsets(path: Path) -> dict[str, list[float]]:
    """Per track title: the times (s) the flash starts (mean luma crosses 128 upwards) or the
    beep starts (the first sample above 0.1 after 50 ms of quiet), from decoding the file."""
    found: dict[str, list[float]] = {}
    with av.open(str(path)) as container:
        titles = {s.index: s.metadata.get("title", s.type) for s in container.streams}
        bright = dict.fromkeys(titles, False)
        quiet_since: dict[int, float | None] = dict.fromkeys(titles, 0.0)
        for packet in container.demux():
            if not packet.size:
                continue
            index = packet.stream.index
            for frame in packet.decode():
                assert frame.time is not None
                onsets = found.setdefault(titles[index], [])
                if isinstance(frame, av.VideoFrame):
                    plane = bytes(frame.planes[0])
                    lit = sum(plane[::97]) / len(plane[::97]) > 128
                    if lit and not bright[index]:
                        onsets.append(frame.time)
                    bright[index] = lit
                else:
                    assert isinstance(frame, av.AudioFrame)
                    values = array.array("f", bytes(frame.planes[0]))[: frame.samples]
                    for n, value in enumerate(values):
                        at = frame.time + n / frame.sample_rate
                        since = quiet_since[index]
                        if abs(value) > 0.1:
                            if since is not None and at - since >= 0.05:
                                onsets.append(at)
                            quiet_since[index] = None
                        elif since is None:
                            quiet_since[index] = at
    return found


def _frame_sizes(path: Path) -> dict[str, Counter[tuple[int, int]]]:
    sizes: dict[str, Counter[tuple[int, int]]] = {}
    with av.open(str(path)) as container:
        for stream in container.streams.video:
            counter = sizes.setdefault(stream.metadata["title"], Counter())
            for frame in container.decode(stream):
                counter[(frame.width, frame.height)] += 1
            container.seek(0)
    return sizes


async def test_the_recording_states_its_codecs_sizes_and_defaults_and_keeps_lip_sync(
    live: Any,
    make_staff: Any,
    app: web.Application,
    client: TestClient[Any, Any],
    synced_sample: SamplePackets,
    tmp_path: Path,
) -> None:
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    shopper = await live.shopper()
    consultation = await shopper.ok("queue.join", {"kind": "video"})
    await console.wait_for("offer.new")
    await console.ok("offer.accept", {"consultation_id": consultation["id"]})
    started = await console.ok("recording.start", {"consultation_id": consultation["id"]})
    assert started["status"] == "recording"
    legs = [
        await _send_leg(shopper, started["id"], synced_sample),
        await _send_leg(console, started["id"], synced_sample),
    ]

    async def enough() -> bool:
        # Every part started, placed by the senders' reports, and holding two laps of media.
        writers = [w.writer for w in app[RECORDER].writers.values() if str(w.recording_id) == started["id"]]
        return len(writers) == 2 and all(
            w.opened and w.stats.synced and w.stats.video_frames >= 2 * LAP_SECONDS * FPS for w in writers
        )

    await wait_until(enough, within=60)
    await console.ok("recording.stop", {"recording_id": started["id"]})
    ready = await shopper.wait_for("recording.updated", lambda r: r["status"] == "ready", within=60)
    for pc in legs:
        await pc.close()
    await login(client, advisor)
    response = await client.get(ready["media_url"])
    assert response.status == 200
    path = tmp_path / "recording.webm"
    path.write_bytes(await response.read())

    # mkvmerge's identification: codec private data, codec delay, default flags, pixel size.
    tracks = json.loads(_tool("mkvmerge", "-J", str(path)))["tracks"]
    by_name = {t["properties"]["track_name"]: t for t in tracks}
    assert list(by_name) == ["shopper video", "shopper audio", "advisor video", "advisor audio"]
    for name in ("shopper audio", "advisor audio"):
        props = by_name[name]["properties"]
        head = bytes.fromhex(props["codec_private_data"])
        # RFC 7845 §5.1: magic, version 1, channels, pre-skip, input rate, gain, mapping family.
        assert len(head) == 19, head
        magic, version, channels, pre_skip, rate, gain, family = struct.unpack("<8sBBHIhB", head)
        assert (magic, version, pre_skip, rate, gain, family) == (b"OpusHead", 1, 312, 48_000, 0, 0)
        assert channels == props["audio_channels"] == 2
        assert props["codec_delay"] == 312 * 1_000_000_000 // 48_000  # 6.5 ms in ns
    # One default track of each kind (the shopper's), the others not.
    defaults = {name: t["properties"]["default_track"] for name, t in by_name.items()}
    assert defaults == {
        "shopper video": True,
        "shopper audio": True,
        "advisor video": False,
        "advisor audio": False,
    }
    # mkvinfo: SeekPreRoll (80 ms) and CodecDelay on each Opus track, as written.
    blocks = _mkvinfo_tracks(path)
    assert len(blocks) == 4
    for block in blocks:
        if "A_OPUS" in block:
            assert "Seek pre-roll: 00:00:00.080000000" in block, block
            assert "Codec-inherent delay: 00:00:00.006500000" in block, block
            assert "Codec's private data: size 19" in block, block
    # ffprobe agrees on the Opus header and the default dispositions.
    entries = "stream=codec_name,width,height,channels,extradata_size:stream_disposition=default"
    probed = json.loads(_tool("ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", str(path)))
    streams = probed["streams"]
    assert [(s["codec_name"], s["disposition"]["default"]) for s in streams] == [
        ("vp8", 1),
        ("opus", 1),
        ("vp8", 0),
        ("opus", 0),
    ]
    assert all(s["extradata_size"] == 19 and s["channels"] == 2 for s in streams if s["codec_name"] == "opus")

    # The header's pixel size is the decoded frames' (most of them: 0.4 s of each lap is larger).
    sizes = _frame_sizes(path)
    for name in ("shopper video", "advisor video"):
        (common, count), *_rest = sizes[name].most_common()
        assert common == SMALL
        assert count >= 0.7 * sum(sizes[name].values()), sizes[name]
        assert by_name[name]["properties"]["pixel_dimensions"] == f"{common[0]}x{common[1]}"
    stated = [(s["width"], s["height"]) for s in streams if s["codec_name"] == "vp8"]
    assert stated == [SMALL, SMALL]

    # Lip sync: every flash has its beep within 20 ms, in the decoded file.
    onsets = _onsets(path)
    for who in ("shopper", "advisor"):
        flashes, beeps = onsets[f"{who} video"], onsets[f"{who} audio"]
        assert flashes, onsets
        assert beeps, onsets
        offsets = [round((min(beeps, key=lambda b, f=f: abs(b - f)) - f) * 1000, 1) for f in flashes]
        assert all(abs(o) <= TOLERANCE_MS for o in offsets), f"{who}: beep minus flash (ms) {offsets}"
