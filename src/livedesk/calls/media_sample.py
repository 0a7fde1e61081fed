"""Encoded media for the recording benchmark and tests: a prepared VP8/Opus WebM file, and an
aiortc track that sends its packets as they are (a track whose ``recv()`` returns ``av.Packet``
is packetised by aiortc without encoding), paced in real time and looping.

Making the sample encodes once (seconds of CPU); sending it costs no encoding at all, so a
benchmark's senders do not compete with the recorder they measure.
"""

from __future__ import annotations

import asyncio
import math
import os
import struct
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


def make_sample(
    path: Path,
    *,
    seconds: float = 4.0,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    bitrate: int = 1_500_000,
    keyframe_seconds: float = 2.0,
) -> Path:
    """Encode a moving test picture (VP8) and a tone (Opus) into ``path`` (WebM)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.webm")
    with av.open(str(tmp), mode="w", format="webm") as out:
        video = out.add_stream("libvpx", rate=fps)
        video.width = width
        video.height = height
        video.pix_fmt = "yuv420p"
        video.bit_rate = bitrate
        # FFmpeg's default quantiser ceiling (31 of 63) would overshoot the bit rate on noise.
        video.options = {"deadline": "realtime", "cpu-used": "8", "qmin": "4", "qmax": "63"}
        video.gop_size = int(fps * keyframe_seconds)
        audio = out.add_stream("libopus", rate=48_000)
        audio.layout = "stereo"
        frames = int(seconds * fps)
        # A noise picture that moves a little every frame, with fresh noise in a band: close to
        # what a camera gives the encoder, so the rate control lands near ``bitrate``.
        luma0 = _blocky_noise(width, height, 8)
        chroma0 = _blocky_noise(width // 2, height // 2, 4)
        for i in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            shift = (i * 8) % width
            band = (i * 16) % (height - 32)
            luma = bytearray(luma0[shift:] + luma0[:shift])
            luma[band * width : (band + 1) * width] = os.urandom(width)
            frame.planes[0].update(bytes(luma))
            frame.planes[1].update(chroma0)
            frame.planes[2].update(chroma0)
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = 960
        for i in range(int(seconds * 50)):
            pcm = bytearray()
            for n in range(samples):
                value = int(0.2 * 32767 * math.sin(2 * math.pi * 440 * (i * samples + n) / 48_000))
                pcm += struct.pack("<hh", value, value)
            aframe = av.AudioFrame(format="s16", layout="stereo", samples=samples)
            aframe.planes[0].update(bytes(pcm))
            aframe.sample_rate = 48_000
            aframe.pts = i * samples
            aframe.time_base = Fraction(1, 48_000)
            out.mux(audio.encode(aframe))
        out.mux(audio.encode(None))
    tmp.replace(path)
    return path


def _blocky_noise(width: int, height: int, block: int) -> bytes:
    """Random pixels in ``block``×``block`` squares."""
    rows = []
    for _ in range(height // block):
        row = b"".join(bytes([v]) * block for v in os.urandom(width // block))
        rows.append(row * block)
    return b"".join(rows)


@dataclass(frozen=True)
class SamplePackets:
    """A sample file's packets per kind, with timestamps in seconds from the start."""

    video: list[tuple[float, bytes, bool]]
    audio: list[tuple[float, bytes, bool]]
    duration: float


def load_sample(path: Path) -> SamplePackets:
    video: list[tuple[float, bytes, bool]] = []
    audio: list[tuple[float, bytes, bool]] = []
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size == 0 or packet.pts is None or packet.time_base is None:
                continue
            at = float(packet.pts * packet.time_base)
            row = (at, bytes(packet), bool(packet.is_keyframe))
            (video if packet.stream.type == "video" else audio).append(row)
    video.sort(key=lambda r: r[0])
    audio.sort(key=lambda r: r[0])
    duration = max(video[-1][0] if video else 0.0, audio[-1][0] if audio else 0.0) + 0.04
    return SamplePackets(video=video, audio=audio, duration=duration)


class PacketTrack(MediaStreamTrack):
    """Sends a sample's encoded packets of one kind in real time, looping, without encoding."""

    def __init__(self, sample: SamplePackets, kind: str, *, start_at_keyframe: bool = True) -> None:
        super().__init__()
        self.kind = kind
        self._rows = sample.video if kind == "video" else sample.audio
        self._loop_length = sample.duration
        self._clock = 90_000 if kind == "video" else 48_000
        self._time_base = Fraction(1, self._clock)
        self._index = 0
        self._lap = 0
        self._t0: float | None = None
        self.sent = 0

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live" or not self._rows:
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
        at, data, keyframe = self._rows[self._index]
        when = self._lap * self._loop_length + at
        delay = self._t0 + when - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self._index += 1
        if self._index == len(self._rows):
            self._index = 0
            self._lap += 1
        packet = av.Packet(data)
        packet.pts = round(when * self._clock)
        packet.time_base = self._time_base
        packet.is_keyframe = keyframe
        self.sent += 1
        return packet
