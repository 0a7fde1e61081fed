"""The WebM writer and the joiner on real encoded media (no network), and Range parsing."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import av
import pytest

from livedesk.calls.media import EncodedFrame, SenderClock, is_vp8_keyframe, vp8_size
from livedesk.calls.media_sample import SamplePackets, load_sample, make_sample
from livedesk.calls.webm import OPUS_PRE_SKIP, WebmWriter
from livedesk.recording.join import PartFile, join_parts
from livedesk.recording.routes import RangeNotSatisfiable, parse_range


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SamplePackets:
    path = tmp_path_factory.mktemp("media") / "sample.webm"
    return load_sample(
        make_sample(path, seconds=2.0, width=320, height=240, bitrate=300_000, keyframe_seconds=1.0)
    )


def _frames(sample: SamplePackets, *, skip_video: int = 0) -> list[EncodedFrame]:
    """The sample's packets as the tap would hand them over (RTP clocks, arrival times)."""
    now = time.monotonic()
    frames = [
        EncodedFrame("video", "VP8", data, round(at * 90_000), now + at)
        for at, data, _k in sample.video[skip_video:]
    ]
    frames += [
        EncodedFrame("audio", "opus", data, round(at * 48_000), now + at) for at, data, _k in sample.audio
    ]
    return sorted(frames, key=lambda f: f.arrival)


def test_vp8_key_frames_are_recognised_with_their_size(sample: SamplePackets) -> None:
    keys = [data for _at, data, key in sample.video if key]
    deltas = [data for _at, data, key in sample.video if not key]
    assert keys
    assert deltas
    assert all(is_vp8_keyframe(k) for k in keys)
    assert not any(is_vp8_keyframe(d) for d in deltas)
    assert vp8_size(keys[0]) == (320, 240)


def test_the_writer_opens_on_a_key_frame_and_keeps_the_audio_that_came_first(
    sample: SamplePackets, tmp_path: Path
) -> None:
    # Start mid-stream: the first video frames are not key frames.
    frames = _frames(sample, skip_video=5)
    writer = WebmWriter(tmp_path / "part.webm", expect_video=True)
    for frame in frames:
        writer.write(frame)
    assert writer.close()
    first_key = next(i for i, (_a, _d, k) in enumerate(sample.video) if k and i >= 5)
    assert writer.stats.dropped_before_keyframe == first_key - 5
    assert writer.stats.video_frames == len(sample.video) - first_key
    assert writer.stats.audio_frames == len(sample.audio)
    with av.open(str(tmp_path / "part.webm")) as container:
        kinds = [s.type for s in container.streams]
        assert kinds == ["video", "audio"]
        first_video = next(container.demux(container.streams.video[0]))
        assert first_video.is_keyframe
    with av.open(str(tmp_path / "part.webm")) as container:
        decoded = sum(1 for _ in container.decode(video=0))
        assert decoded == writer.stats.video_frames


def test_a_voice_call_writes_audio_only_and_an_empty_leg_writes_nothing(
    sample: SamplePackets, tmp_path: Path
) -> None:
    writer = WebmWriter(tmp_path / "voice.webm", expect_video=False)
    for frame in _frames(sample):
        if frame.kind == "audio":
            writer.write(frame)
    assert writer.close()
    with av.open(str(tmp_path / "voice.webm")) as container:
        assert [s.type for s in container.streams] == ["audio"]
        assert sum(1 for _ in container.decode(audio=0)) == len(sample.audio)
    empty = WebmWriter(tmp_path / "empty.webm", expect_video=True)
    assert not empty.close()
    assert not (tmp_path / "empty.webm").exists()


def test_parts_are_joined_by_remux_at_their_offsets(sample: SamplePackets, tmp_path: Path) -> None:
    parts = []
    for name in ("shopper", "advisor"):
        writer = WebmWriter(tmp_path / f"{name}.webm", expect_video=True)
        for frame in _frames(sample):
            writer.write(frame)
        writer.close()
        parts.append(writer)
    joined = join_parts(
        [
            PartFile("advisor", tmp_path / "advisor.webm", 1000),
            PartFile("shopper", tmp_path / "shopper.webm", 0),
        ],
        tmp_path / "joined.webm",
    )
    assert joined.tracks == ["shopper video", "shopper audio", "advisor video", "advisor audio"]
    assert 2900 <= joined.duration_ms <= 3200
    with av.open(str(tmp_path / "joined.webm")) as container:
        first_pts = {}
        for packet in container.demux():
            if packet.size and packet.stream.index not in first_pts:
                first_pts[packet.stream.index] = packet.pts
        assert first_pts[0] < 100
        assert first_pts[2] >= 1000
    # Stream copy: the joined packets are byte for byte those sent.
    with av.open(str(tmp_path / "joined.webm")) as container:
        video = [bytes(p) for p in container.demux(video=0) if p.size]
    assert video == [data for _at, data, _k in sample.video]


def _first_pts(path: Path) -> dict[str, int]:
    first: dict[str, int] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size and packet.pts is not None:
                first.setdefault(packet.stream.type, int(packet.pts))
    return first


def test_the_writer_places_audio_and_video_by_the_senders_clock(
    sample: SamplePackets, tmp_path: Path
) -> None:
    """The jitter buffers hand audio ~80 ms and video ~33 ms after capture: by arrival, audio
    would land ~47 ms late; by the senders' reports (sender_time) it lands where it was sent."""
    now = time.monotonic()
    frames = [
        EncodedFrame("video", "VP8", data, round(at * 90_000), now + at + 0.033, 5000.0 + at)
        for at, data, _k in sample.video
    ]
    frames += [
        EncodedFrame("audio", "opus", data, round(at * 48_000), now + at + 0.080, 5000.0 + at)
        for at, data, _k in sample.audio
    ]
    synced = WebmWriter(tmp_path / "synced.webm", expect_video=True)
    by_arrival = WebmWriter(tmp_path / "arrival.webm", expect_video=True)
    for frame in sorted(frames, key=lambda f: f.arrival):
        synced.write(frame)
        by_arrival.write(replace(frame, sender_time=None))
    assert synced.close()
    assert by_arrival.close()
    assert synced.stats.synced
    assert not by_arrival.stats.synced
    # In the sample audio starts at a0 (its RTP time); presented 312 samples (6.5 ms) earlier.
    a0, v0 = sample.audio[0][0], sample.video[0][0]
    expected = round((a0 - OPUS_PRE_SKIP / 48_000 - v0) * 1000)
    first = _first_pts(tmp_path / "synced.webm")
    assert abs((first["audio"] - first["video"]) - expected) <= 1, (first, expected)
    late = _first_pts(tmp_path / "arrival.webm")
    assert (late["audio"] - late["video"]) - round((a0 - v0) * 1000) >= 40, late


def test_the_opus_track_carries_its_opus_head_and_codec_delay(sample: SamplePackets, tmp_path: Path) -> None:
    writer = WebmWriter(tmp_path / "part.webm", expect_video=True)
    for frame in _frames(sample):
        writer.write(frame)
    writer.close()
    with av.open(str(tmp_path / "part.webm")) as container:
        audio = container.streams.audio[0]
        head = audio.codec_context.extradata
        assert head is not None
        assert head[:8] == b"OpusHead"
        assert len(head) == 19
        assert int.from_bytes(head[10:12], "little") == OPUS_PRE_SKIP
        assert audio.codec_context.channels == 2
        assert all(s.disposition & av.stream.Disposition.default for s in container.streams)


def test_a_senders_clock_keeps_the_earliest_mapping_and_crosses_the_rtp_wrap() -> None:
    clock = SenderClock(48_000)
    assert clock.sender_time(0) is None
    ntp = 3_900_000_000 << 32
    clock.report(ntp, 2**32 - 48_000)
    assert clock.sender_time(48_000) == pytest.approx(3_900_000_002.0)
    assert clock.sender_time(2**32 - 96_000) == pytest.approx(3_899_999_999.0)
    # A report noted 30 ms late (a busy sender) does not move the mapping; an earlier one does.
    clock.report(ntp + (1 << 32) + int(0.030 * (1 << 32)), 0)
    assert clock.sender_time(0) == pytest.approx(3_900_000_001.0)
    clock.report(ntp + (2 << 32) - int(0.010 * (1 << 32)), 48_000)
    assert clock.sender_time(48_000) == pytest.approx(3_900_000_001.990)
    assert clock.reports == 3


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-9", (0, 9)),
        ("bytes=90-", (90, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=50-500", (50, 99)),
    ],
)
def test_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize(
    "header", ["bytes=100-", "bytes=5-1", "bytes=-0", "bytes=-", "items=0-1", "bytes=0-1,3-4"]
)
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)
