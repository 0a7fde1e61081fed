"""Joining the participant files into one recording, by stream copy (a remux, never a
re-encode): one WebM holding the shopper's video and audio and the advisor's video and audio
as four tracks, each part placed at its wall-clock offset from the first.

Why one container of tracks rather than a composed picture: composing (side by side, mixed
audio) means decoding and re-encoding the whole call — the cost the server leg exists to
avoid — while a remux costs a few milliseconds of CPU per minute of call and keeps each
participant's picture and sound exactly as sent. Players show the default video and audio track
(the shopper's, the first of each kind, is flagged default) or let you pick (VLC, ffplay); the
playback page lets staff switch tracks.

The parts' codec headers are copied (the Opus tracks keep their OpusHead, CodecDelay and
SeekPreRoll, see calls/webm.py). A participant's picture size can change within the call (a
browser scales its video down under load or on a slow link): Matroska has one pixel size per
track, so the joined track states the size most of its frames have, read from the VP8 key
frames' headers.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from livedesk.calls.media import is_vp8_keyframe, vp8_size

PARTICIPANT_ORDER = ("shopper", "advisor")
KIND_ORDER = ("video", "audio")
TIME_BASE = Fraction(1, 1000)


@dataclass(frozen=True)
class PartFile:
    participant: str
    path: Path
    offset_ms: int  # from the earliest part's first frame


@dataclass(frozen=True)
class Joined:
    duration_ms: int
    tracks: list[str]  # "shopper video", "shopper audio", …
    packets: int


def _packets(container: Any, streams: dict[int, Any], offset_ms: int) -> Iterator[tuple[int, int, Any]]:
    order = 0
    for packet in container.demux():
        if packet.size == 0 or packet.pts is None or packet.stream.index not in streams:
            continue
        pts_ms = offset_ms + int(packet.pts * packet.time_base * 1000)
        order += 1
        yield pts_ms, order, (packet, streams[packet.stream.index])


def frame_sizes(container: Any) -> Counter[tuple[int, int]]:
    """How many video frames the file has at each pixel size (a key frame's VP8 header gives
    the size of it and the frames after it)."""
    sizes: Counter[tuple[int, int]] = Counter()
    if not container.streams.video:
        return sizes
    size = None
    for packet in container.demux(container.streams.video[0]):
        if packet.size == 0:
            continue
        head = bytes(memoryview(packet)[:10])
        if is_vp8_keyframe(head):
            size = vp8_size(head)
        if size is not None:
            sizes[size] += 1
    container.seek(0)
    return sizes


def join_parts(parts: list[PartFile], out_path: Path) -> Joined:
    """Remux ``parts`` into ``out_path`` (WebM). Blocking: run it in a thread."""
    inputs = [(part, av.open(str(part.path))) for part in parts]
    try:
        out = av.open(str(out_path), mode="w", format="webm")
        try:
            targets: dict[tuple[str, str], Any] = {}
            for participant in PARTICIPANT_ORDER:
                for kind in KIND_ORDER:
                    for part, container in inputs:
                        if part.participant != participant:
                            continue
                        template = next((s for s in container.streams if s.type == kind), None)
                        if template is None:
                            continue
                        stream: Any = out.add_stream_from_template(template)
                        stream.time_base = TIME_BASE
                        stream.metadata["title"] = f"{participant} {kind}"
                        # One default track per kind (the first: the shopper's when present).
                        first = not any(k == kind for (_p, k) in targets)
                        stream.disposition = av.stream.Disposition(
                            av.stream.Disposition.default if first else 0
                        )
                        if kind == "video":
                            sizes: Counter[tuple[int, int]] = Counter()
                            for other, other_container in inputs:
                                if other.participant == participant:
                                    sizes += frame_sizes(other_container)
                            if sizes:
                                stream.width, stream.height = sizes.most_common(1)[0][0]
                        targets[(participant, kind)] = stream
                        break
            sources = []
            for part, container in inputs:
                mapping = {
                    s.index: targets[(part.participant, s.type)]
                    for s in container.streams
                    if (part.participant, s.type) in targets
                }
                sources.append(_packets(container, mapping, part.offset_ms))
            last: dict[int, int] = {}
            count = 0
            duration = 0
            for pts_ms, _order, (packet, stream) in heapq.merge(*sources, key=lambda row: (row[0], row[1])):
                previous = last.get(stream.index)
                # An Opus track may start a few ms below zero (its pre-skip, see calls/webm.py).
                pts = pts_ms if previous is None or pts_ms > previous else previous + 1
                last[stream.index] = pts
                packet.stream = stream
                packet.pts = pts
                packet.dts = pts
                packet.time_base = TIME_BASE
                out.mux(packet)
                count += 1
                duration = max(duration, pts)
        finally:
            out.close()
    finally:
        for _part, container in inputs:
            container.close()
    tracks = [f"{participant} {kind}" for (participant, kind) in targets]
    return Joined(duration_ms=duration, tracks=tracks, packets=count)


@dataclass(frozen=True)
class Salvaged:
    duration_ms: int
    packets: int
    video_frames: int
    audio_frames: int


def salvage_part(source: Path, out_path: Path) -> Salvaged:
    """Remux what a process that died had written of its part (a WebM cut off mid-cluster)
    into a clean file: every packet that can still be read, up to the first damaged one.
    Blocking: run it in a thread."""
    counts = {"video": 0, "audio": 0}
    duration = 0
    packets = 0
    with av.open(str(source)) as container:
        out = av.open(str(out_path), mode="w", format="webm")
        try:
            streams = {
                s.index: out.add_stream_from_template(s) for s in container.streams if s.type in counts
            }
            try:
                for packet in container.demux():
                    if packet.size == 0 or packet.pts is None or packet.stream.index not in streams:
                        continue
                    kind = packet.stream.type
                    pts_ms = int(packet.pts * packet.time_base * 1000)
                    packet.stream = streams[packet.stream.index]
                    out.mux(packet)
                    counts[kind] += 1
                    packets += 1
                    duration = max(duration, pts_ms)
            except (av.error.InvalidDataError, av.error.EOFError, OSError):
                pass  # the cut-off end: everything before it is kept
        finally:
            out.close()
    return Salvaged(duration, packets, counts["video"], counts["audio"])
