"""Group commit for small writes that arrive in bursts.

``Batcher.submit(item)`` returns once ``flush`` has handled a batch holding the item. While
one flush runs, the items submitted meanwhile wait and go together in the next one, so a
lone item is written at once, and a burst (thousands of sockets coming back after a restart)
costs one transaction per batch instead of one per item. Batches run one at a time in the
order items were submitted, so an item never overtakes one submitted before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Batcher(Generic[T]):
    def __init__(self, flush: Callable[[list[T]], Awaitable[None]], max_items: int = 500) -> None:
        self._flush = flush
        self._max = max_items
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Wait until ``item`` is flushed; raise what its batch's flush raised."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="batcher")
        # A caller that stops waiting (cancelled) does not take its item out: the batch it
        # is in may already be on its way, and items behind it must keep their order.
        await asyncio.shield(future)

    async def _run(self) -> None:
        # One turn of the loop first: the items of everything woken together join this batch.
        await asyncio.sleep(0)
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max], self._waiting[self._max :]
            try:
                await self._flush([item for item, _ in batch])
            except Exception as exc:  # each waiter hears of its own batch's failure
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
