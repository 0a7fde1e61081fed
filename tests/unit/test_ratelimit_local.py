"""The in-process moving window (kit/ratelimit.py LocalWindows)."""

from __future__ import annotations

import time

import pytest
from limits import parse

from livedesk.kit.errors import TooManyRequests
from livedesk.kit.ratelimit import LocalWindows, RateLimits


def test_moving_window_counts_hits_and_frees_them_as_they_age(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    windows = LocalWindows()
    rule = parse("3/10seconds")
    assert [windows.hit(rule, "a") for _ in range(4)] == [True, True, True, False]
    # Another key has its own window.
    assert windows.test(rule, "b")
    assert not windows.test(rule, "a")
    clock[0] += 9.9
    assert not windows.test(rule, "a")
    # Moving, not fixed: the first hits leave the window 10 s after they were made.
    clock[0] += 0.2
    assert windows.test(rule, "a")
    assert windows.get_window_stats(rule, "a").remaining == 3


def test_idle_keys_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    windows = LocalWindows()
    rule = parse("1000/second")
    for i in range(50):
        windows.hit(rule, f"party-{i}")
    clock[0] += 2
    for _ in range(LocalWindows.SWEEP_EVERY):
        windows.hit(rule, "busy")
    assert [keys for _, _, keys in windows._hits] == [("busy",)]


async def test_rate_limits_allows_count_and_refusal() -> None:
    limits = RateLimits()
    assert await limits.allows("2/minute", "chat", "x")
    await limits.count("2/minute", "chat", "x")
    await limits.hit("2/minute", "chat", "x", message="slow")
    assert not await limits.allows("2/minute", "chat", "x")
    with pytest.raises(TooManyRequests) as refused:
        await limits.hit("2/minute", "chat", "x", message="slow")
    assert 1 <= refused.value.retry_after <= 60
    await limits.clear("2/minute", "chat", "x")
    assert await limits.allows("2/minute", "chat", "x")
