"""Periodic work, written once: every job that runs "every N seconds while the app runs" is a
``Periodic``.

What each job used to write by hand, and gets here:

- **start and stop with the app**: ``start()``/``stop()`` from a cleanup context, or ``spawn(background)``
  so ``Background.close`` cancels it before the database closes. Stopping cancels the sleep or the
  run under way at once; cancellation is never swallowed.
- **jitter**: each wait is ``every`` ± ``jitter`` (a fraction), so replicas started together do
  not all hit the database in the same instant, tick after tick.
- **errors keep the loop alive**: a run that raises is logged with the job's name (an error with
  its traceback, or a warning for ``quiet`` jobs whose failures are expected blips) and the loop
  goes on to the next tick.
- **run now** (``kick``): a pass right away, coalesced — a kick during a pass makes one more pass,
  not one per kick — for jobs that something else can make due (a shopper joined the queue, a
  booking mail was queued). The tick goes through the same path, so a tick and a kick never run
  a pass side by side.
- **once across processes** (``claim``): a job whose work must not run in two processes at once
  takes a ``Claim`` before each run and skips the tick when another holder has it. The claim lasts
  a little longer than the interval and the holder renews it on each run, so it moves to another
  process only when its holder stops ticking (stopped or dead). Today's jobs do not need one —
  each claims its rows (a webhook's lease, a booking mail's row, a recording's join claim) so
  that any number of processes can run them — but a job that cannot claim per row can.

The sleep and the random source are parameters, so tests drive the loop with a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from livedesk.kit.background import Background
from livedesk.kit.db import is_unavailable
from livedesk.kit.logging import get_logger

# A random source of its own: the jitter must not draw from (and move) the global one that
# tests and libraries seed and watch (hypothesis fails a test whose strategies see it move).
_JITTER = random.Random()  # noqa: S311 - spreading timers, not a secret

log = get_logger("livedesk.periodic")

Sleep = Callable[[float], Awaitable[None]]
Work = Callable[[], Awaitable[object]]

DEFAULT_JITTER = 0.1
# A claim outlives one interval by this factor: a holder a little late renews in time.
CLAIM_SLACK = 3.0


class Claim(Protocol):
    """Who runs a job across processes: ``take`` answers whether ``holder`` holds (or now has
    taken, or renewed) the claim on ``name`` for ``ttl`` seconds."""

    async def take(self, name: str, holder: str, ttl: float) -> bool: ...


class LocalClaim:
    """A claim within one process (a single-process deployment on SQLite, and tests)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._held: dict[str, tuple[str, float]] = {}

    async def take(self, name: str, holder: str, ttl: float) -> bool:
        now = self._clock()
        current = self._held.get(name)
        if current is not None and current[0] != holder and current[1] > now:
            return False
        self._held[name] = (holder, now + ttl)
        return True


# Take the key when it is free or already ours, and push its expiry forward: one round trip,
# atomic, so two processes never both see "free".
_TAKE = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


class _Redis(Protocol):
    # A plain def returning an awaitable: redis-py's own client declares it so.
    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Awaitable[Any]: ...


class RedisClaim:
    """A claim shared by every process using the same Redis (a key per job, with an expiry)."""

    def __init__(self, redis: _Redis, prefix: str = "livedesk:periodic:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def take(self, name: str, holder: str, ttl: float) -> bool:
        won = await self._redis.eval(_TAKE, 1, self._prefix + name, holder, str(max(1, int(ttl * 1000))))
        return bool(int(won))


class Periodic:
    """``work`` every ``every`` seconds (a number, or a function read before each wait, for an
    interval that comes from settings a test may change)."""

    def __init__(
        self,
        name: str,
        work: Work,
        *,
        every: float | Callable[[], float],
        jitter: float = DEFAULT_JITTER,
        first_at_once: bool = False,
        again_at_once: Callable[[object], bool] | None = None,
        claim: Claim | None = None,
        quiet: bool = False,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = _JITTER.random,
    ) -> None:
        """``first_at_once`` runs the first pass on start instead of after one interval;
        ``again_at_once(result)`` says the run left work behind (a full batch) and the next
        should start without waiting; ``quiet`` logs a failed run as a warning without its
        traceback (for a job whose failures are expected blips: Redis or the database away)."""
        if not 0 <= jitter < 1:
            raise ValueError("jitter is a fraction of the interval, from 0 up to (not including) 1")
        self.name = name
        self._work = work
        self._every = every
        self._jitter = jitter
        self._first_at_once = first_at_once
        self._again_at_once = again_at_once
        self._claim = claim
        self._quiet = quiet
        self._sleep = sleep
        self._rand = rand
        self.holder = uuid.uuid4().hex
        self._lock = asyncio.Lock()
        self._again = False
        self._task: asyncio.Task[None] | None = None
        # For tests and diagnostics.
        self.runs = 0
        self.failures = 0
        self.skipped = 0

    @property
    def interval(self) -> float:
        return self._every() if callable(self._every) else self._every

    def next_wait(self) -> float:
        """The interval, moved by up to ± ``jitter`` of itself."""
        every = self.interval
        return max(0.0, every * (1 + self._jitter * (2 * self._rand() - 1)))

    async def kick(self) -> object:
        """Run a pass now, in the caller's task: coalesced — during a pass under way (a kick's
        or the tick's) it asks that pass's runner for one more and returns at once. Returns the
        last pass's result (``None`` when coalesced)."""
        if self._lock.locked():
            self._again = True
            return None
        result: object = None
        async with self._lock:
            self._again = True
            while self._again:
                self._again = False
                result = await self.run_once()
        return result

    async def run_once(self) -> object:
        """One pass: the claim (if any), then the work; an error is logged, never raised."""
        try:
            if self._claim is not None:
                ttl = self.interval * (1 + self._jitter) * CLAIM_SLACK
                if not await self._claim.take(self.name, self.holder, ttl):
                    self.skipped += 1
                    return None
            result = await self._work()
        except Exception as exc:  # the next tick tries again: one failing run must not end the job
            self.failures += 1
            if self._quiet:
                log.warning("periodic job failed", job=self.name, error=repr(exc))
            else:
                log_job_failure(log, "periodic job failed", exc, job=self.name)
            return None
        self.runs += 1
        return result

    async def loop(self) -> None:
        """The job, forever (until cancelled)."""
        wait = not self._first_at_once
        while True:
            if wait:
                await self._sleep(self.next_wait())
            result = await self.kick()
            wait = not (self._again_at_once is not None and self._again_at_once(result))

    def start(self) -> None:
        """Run in a task of its own; ``stop`` ends it (for a cleanup context)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.loop(), name=self.name)

    def spawn(self, background: Background) -> None:
        """Run as one of the app's background tasks: ``Background.close`` ends it."""
        background.spawn(self.loop(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def busy(self) -> bool:
        """A pass is under way (a kick's or the tick's)."""
        return self._lock.locked()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()


def log_job_failure(logger: Any, event: str, exc: BaseException, **fields: Any) -> None:
    """A background pass that failed: a database outage is expected and said in one line; anything
    else is a bug and logged with its traceback. During an outage every job fails on every tick,
    and rendering a traceback with its locals takes the event loop for a long moment each (under
    load, seconds: long enough to hold up the answers sockets are waiting for)."""
    if is_unavailable(exc):
        logger.warning(event, error=repr(exc), **fields)
    else:
        logger.exception(event, **fields)
