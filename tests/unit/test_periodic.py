"""kit/periodic.py: the one helper every periodic job goes through. Driven by a fake clock
(each wait is recorded and ends only when the test says so), never by real sleeps."""

from __future__ import annotations

import asyncio
import os
import random
import uuid

import pytest
import structlog
from redis.asyncio import Redis

from livedesk.kit.background import Background
from livedesk.kit.periodic import LocalClaim, Periodic, RedisClaim


class FakeClock:
    """``sleep`` records the wait and blocks until ``tick``; ``waiting(n)`` returns once the
    loop has reached its n-th wait (so everything before it has run)."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 0.0
        self._gate: asyncio.Queue[None] = asyncio.Queue()
        self._changed = asyncio.Condition()

    async def sleep(self, seconds: float) -> None:
        async with self._changed:
            self.waits.append(seconds)
            self._changed.notify_all()
        await self._gate.get()
        self.now += seconds

    def tick(self, times: int = 1) -> None:
        for _ in range(times):
            self._gate.put_nowait(None)

    async def waiting(self, count: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.waits) >= count), 5)


def test_jitter_stays_within_its_bounds() -> None:
    async def nothing() -> None:
        return None

    assert Periodic("j", nothing, every=10, jitter=0.2, rand=lambda: 0.0).next_wait() == pytest.approx(8.0)
    top = Periodic("j", nothing, every=10, jitter=0.2, rand=lambda: 0.999999)
    assert top.next_wait() == pytest.approx(12.0)
    rng = random.Random(7)
    job = Periodic("j", nothing, every=10, jitter=0.2, rand=rng.random)
    waits = [job.next_wait() for _ in range(2000)]
    assert all(8.0 <= w <= 12.0 for w in waits)
    # Spread out (replicas do not tick together), centred on the interval.
    assert max(waits) - min(waits) > 3.0
    assert sum(waits) / len(waits) == pytest.approx(10.0, abs=0.2)
    assert Periodic("j", nothing, every=10, jitter=0).next_wait() == 10.0
    with pytest.raises(ValueError, match="jitter"):
        Periodic("j", nothing, every=10, jitter=1.0)


async def test_the_interval_is_read_before_each_wait() -> None:
    clock, every = FakeClock(), [1.0]

    async def nothing() -> None:
        return None

    job = Periodic("j", nothing, every=lambda: every[0], jitter=0, sleep=clock.sleep)
    job.start()
    await clock.waiting(1)
    every[0] = 2.5
    clock.tick()
    await clock.waiting(2)
    await job.stop()
    assert clock.waits == [1.0, 2.5]


async def test_a_failing_run_is_logged_with_its_name_and_the_loop_goes_on() -> None:
    clock, calls = FakeClock(), []

    async def flaky() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("database away")

    job = Periodic("flaky-job", flaky, every=1, sleep=clock.sleep)
    with structlog.testing.capture_logs() as logs:
        job.start()
        await clock.waiting(1)
        clock.tick()  # first run: fails
        await clock.waiting(2)
        clock.tick()  # second run: fine
        await clock.waiting(3)
    assert job.running
    await job.stop()
    assert (calls, job.failures, job.runs) == ([0, 1], 1, 1)
    failed = [entry for entry in logs if entry.get("job") == "flaky-job"]
    assert len(failed) == 1
    assert failed[0]["log_level"] == "error"


async def test_a_quiet_job_logs_a_failure_as_a_warning_without_its_traceback() -> None:
    async def away() -> None:
        raise ConnectionError("redis away")

    job = Periodic("quiet-job", away, every=1, quiet=True)
    with structlog.testing.capture_logs() as logs:
        await job.kick()
    (entry,) = [e for e in logs if e.get("job") == "quiet-job"]
    assert entry["log_level"] == "warning"
    assert entry["error"] == "ConnectionError('redis away')"
    assert "exc_info" not in entry


async def test_stop_cancels_a_wait_and_a_run_at_once() -> None:
    job = Periodic("idle", _never, every=3600)
    job.start()
    await asyncio.wait_for(job.stop(), 1)  # in the middle of an hour's wait
    assert not job.running

    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    busy = Periodic("busy", slow, every=3600, first_at_once=True)
    busy.start()
    await asyncio.wait_for(started.wait(), 1)
    await asyncio.wait_for(busy.stop(), 1)  # cancellation is not taken for a failed run
    assert cancelled.is_set()
    assert busy.failures == 0
    assert not busy.running


async def test_spawned_jobs_end_with_the_background() -> None:
    background = Background()
    Periodic("bg-job", _never, every=3600).spawn(background)
    assert background.pending("bg-job") == 1
    await asyncio.wait_for(background.close(), 1)
    assert background.pending("bg-job") == 0


async def test_first_at_once_and_again_at_once() -> None:
    clock, results = FakeClock(), [100, 100, 3, 100]
    ran: list[int] = []

    async def batch() -> int:
        ran.append(results[len(ran)])
        return ran[-1]

    job = Periodic(
        "batches", batch, every=1, sleep=clock.sleep, first_at_once=True, again_at_once=lambda n: n == 100
    )
    job.start()
    # At once, then at once again after each full batch, and a wait after a short one.
    await clock.waiting(1)
    assert ran == [100, 100, 3]
    clock.tick()
    await clock.waiting(2)
    await job.stop()
    assert ran == [100, 100, 3, 100]


async def test_a_kick_runs_now_and_kicks_during_a_pass_coalesce() -> None:
    gate, started, passes = asyncio.Event(), asyncio.Event(), []

    async def work() -> None:
        passes.append(1)
        started.set()
        await gate.wait()

    job = Periodic("kicked", work, every=3600)
    first = asyncio.create_task(job.kick())
    await asyncio.wait_for(started.wait(), 1)
    await asyncio.gather(job.kick(), job.kick(), job.kick())  # return at once: a pass is under way
    gate.set()
    await first
    assert len(passes) == 2  # the pass under way, and one more for all three kicks


async def test_with_a_shared_claim_only_one_runs_per_tick_until_its_holder_stops() -> None:
    now = [0.0]
    claim = LocalClaim(clock=lambda: now[0])
    ran: list[str] = []

    def job(name: str) -> Periodic:
        async def work() -> None:
            ran.append(name)

        return Periodic("once-per-cluster", work, every=10, jitter=0, claim=claim)

    a, b = job("a"), job("b")
    for _ in range(5):
        await asyncio.gather(a.kick(), b.kick())
        now[0] += 10
    assert ran == ["a"] * 5
    assert b.skipped == 5
    # a stops ticking: once its claim has lapsed, b takes over.
    ran.clear()
    now[0] += 10 * 3
    await b.kick()
    await a.kick()
    assert ran == ["b"]
    assert a.skipped == 1


@pytest.mark.skipif(not os.environ.get("LIVEDESK_TEST_REDIS_URL"), reason="needs LIVEDESK_TEST_REDIS_URL")
async def test_a_redis_claim_is_held_by_one_process_at_a_time() -> None:
    redis = Redis.from_url(os.environ["LIVEDESK_TEST_REDIS_URL"])
    claim = RedisClaim(redis, prefix=f"livedesk:test-periodic:{uuid.uuid4().hex}:")
    try:
        ran: list[str] = []

        def job(name: str) -> Periodic:
            async def work() -> None:
                ran.append(name)

            return Periodic("once-per-cluster", work, every=10, claim=claim)

        jobs = [job(name) for name in "abc"]
        for _ in range(3):
            await asyncio.gather(*(j.kick() for j in jobs))
        assert len(ran) == 3
        assert len(set(ran)) == 1
        holder = next(j for j in jobs if j.runs)
        assert sum(j.skipped for j in jobs) == 6
        # Its key lapses (here: is removed) and another takes it on its next tick.
        await redis.delete(f"{claim._prefix}once-per-cluster")
        other = next(j for j in jobs if j is not holder)
        await other.kick()
        await holder.kick()
        assert other.runs == 1
        assert holder.skipped == 1
    finally:
        await redis.aclose()


async def _never() -> None:
    return None


class _Lines:
    """Records what a job's failure report wrote (a logger at the edge)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, object]]] = []

    def warning(self, event: str, **fields: object) -> None:
        self.lines.append(("warning", event, fields))

    def exception(self, event: str, **fields: object) -> None:
        self.lines.append(("exception", event, fields))


def test_a_database_outage_is_one_line_and_a_bug_keeps_its_traceback() -> None:
    """During an outage every job fails on every tick: a traceback each (with locals, seconds of
    the loop under load) held up socket answers in the outage test. An outage is one line."""
    from sqlalchemy import exc as sa_exc

    from livedesk.kit.periodic import log_job_failure

    lines = _Lines()
    log_job_failure(lines, "pass failed", ConnectionRefusedError(111, "refused"), job="j")
    log_job_failure(lines, "pass failed", sa_exc.TimeoutError("pool"), job="j")
    log_job_failure(lines, "pass failed", KeyError("bug"), job="j")
    assert [(kind, fields.get("job")) for kind, _, fields in lines.lines] == [
        ("warning", "j"),
        ("warning", "j"),
        ("exception", "j"),
    ]
    assert "refused" in str(lines.lines[0][2]["error"])
