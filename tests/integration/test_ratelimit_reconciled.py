"""Rate limits decided in each process and reconciled through Redis (kit/ratelimit.py
ReconciledWindows): two ``RateLimits`` on one Redis stand for two processes."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import coredis
import pytest

from livedesk.kit.errors import TooManyRequests
from livedesk.kit.ratelimit import RateLimits, ReconciledWindows
from tests.conftest import wait_until

REDIS_URL = os.environ.get("LIVEDESK_TEST_REDIS_URL", "")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="set LIVEDESK_TEST_REDIS_URL")
RULE = "5/10seconds"


@pytest.fixture
async def processes() -> AsyncIterator[tuple[RateLimits, RateLimits]]:
    first, second = RateLimits(REDIS_URL), RateLimits(REDIS_URL)
    yield first, second
    first.close()
    second.close()


async def _in_redis(key: str) -> int:
    client = coredis.Redis.from_url(REDIS_URL)
    found = await client.keys(f"{ReconciledWindows.PREFIX}*{key}")
    return sum([await client.zcard(name) for name in found])


async def _spend(limits: RateLimits, key: str) -> bool:
    if not await limits.allows(RULE, "chat.send", key, reconciled=True):
        return False
    await limits.count(RULE, "chat.send", key, reconciled=True)
    return True


async def test_one_process_counts_exactly_without_waiting(processes: tuple[RateLimits, RateLimits]) -> None:
    first, _ = processes
    key = f"party-{uuid.uuid4()}"
    assert [await _spend(first, key) for _ in range(6)] == [True] * 5 + [False]
    refusal = await first.refusal(RULE, "chat.send", key, message="slow down", reconciled=True)
    assert isinstance(refusal, TooManyRequests)
    assert 1 <= refusal.retry_after <= 10


async def test_the_budget_holds_across_processes(processes: tuple[RateLimits, RateLimits]) -> None:
    first, second = processes
    key = f"party-{uuid.uuid4()}"
    assert [await _spend(first, key) for _ in range(3)] == [True] * 3

    async def published(count: int) -> bool:
        return await _in_redis(key) == count

    # Published within a sync period, without a further send.
    await wait_until(lambda: published(3), within=5)
    # The second process reads the window on its first decision: two left.
    assert [await _spend(second, key) for _ in range(3)] == [True, True, False]
    await wait_until(lambda: published(5), within=5)

    # The first process learns of the second's hits at its next sync.
    async def first_refuses() -> bool:
        return not await first.allows(RULE, "chat.send", key, reconciled=True)

    await wait_until(first_refuses, within=5)
    # clear frees the window everywhere it is read next.
    await first.clear(RULE, "chat.send", key)
    assert await _in_redis(key) == 0
