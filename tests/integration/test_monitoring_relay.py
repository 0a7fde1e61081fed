"""The monitoring relay track on real legs (no network needed): it waits for a leg, forwards
its frames as packets unchanged, follows a replacement leg with timestamps that keep
increasing, survives a leg closing, and a stop wakes a waiting reader."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiortc import RTCConfiguration
from aiortc.mediastreams import MediaStreamError

from livedesk.calls.legs import Leg
from livedesk.calls.media import EncodedFrame
from livedesk.calls.monitor_relay import STEP, MonitorTrack


def _frame(timestamp: int, data: bytes = b"\x01opus") -> EncodedFrame:
    return EncodedFrame(kind="audio", codec="opus", data=data, timestamp=timestamp, arrival=0.0)


async def _leg() -> Leg:
    return Leg(uuid.uuid4(), "shopper", RTCConfiguration(iceServers=[]), None)


async def _recv(track: MonitorTrack) -> Any:
    return await asyncio.wait_for(track.recv(), 2)


async def test_the_relay_follows_legs_with_increasing_timestamps() -> None:
    track = MonitorTrack("shopper", "audio")
    waiting = asyncio.ensure_future(track.recv())
    first = await _leg()
    track.attach(first)
    first._deliver(_frame(48_000, b"\x01one"))
    packet = await asyncio.wait_for(waiting, 2)
    assert bytes(packet) == b"\x01one"
    assert packet.pts == 48_000
    first._deliver(_frame(48_960))
    assert (await _recv(track)).pts == 48_960

    # A reload: the new leg's clock starts again at 0; the supervisor's stream goes on.
    second = await _leg()
    track.attach(second)
    assert first.subscribers == []
    second._deliver(_frame(0, b"\x01two"))
    second._deliver(_frame(960))
    moved = [await _recv(track), await _recv(track)]
    assert bytes(moved[0]) == b"\x01two"
    assert [p.pts for p in moved] == [48_960 + STEP["audio"], 48_960 + STEP["audio"] + 960]

    # The leg closes: the track does not end, it waits for the next leg.
    reading = asyncio.ensure_future(track.recv())
    await second.close()
    third = await _leg()
    track.attach(third)
    third._deliver(_frame(10))
    assert (await asyncio.wait_for(reading, 2)).pts > moved[1].pts

    # Stopping wakes a reader and ends it.
    reading = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)  # a loop turn: the reader is now waiting
    track.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(reading, 2)
    assert third.subscribers == []
    for leg in (first, third):
        await leg.close()
