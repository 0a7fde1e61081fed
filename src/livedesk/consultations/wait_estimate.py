"""How long each waiting shopper will likely wait — pure rules, no I/O.

The queue is played forward the way routing will serve it: every advisor who can take
consultations now or later (available, or busy in a call) is a desk that frees up when her
current work likely ends; offered consultations hold their advisor from now; then each
queued consultation, oldest first, goes to the desk among those routing could offer it to
that frees up first, and occupies it for that advisor's typical handle time.

So a shopper with a matching advisor idle waits zero, whatever her place; otherwise the
estimate comes from the recent handle times of the advisors who could take her. Away and
offline advisors take nobody and are not counted. When nobody who could take her is
online, there is nothing to play forward: ``None``.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from livedesk.models import ConsultationKind

# A consultation running past its advisor's typical length is still expected to last a
# while: at least this share of a typical one.
REMAINING_FLOOR = 0.25


@dataclass(frozen=True)
class Desk:
    """An advisor who will take consultations: what she holds now and her typical pace."""

    staff_id: uuid.UUID
    handle_seconds: float
    # Seconds already spent in her current call (None: not in a call).
    call_elapsed: float | None = None
    # Seconds already spent in each chat she holds.
    chats_elapsed: tuple[float, ...] = ()


@dataclass(frozen=True)
class Waiter:
    """A waiting consultation, in queue order. ``offered_to``: the advisor asked right now."""

    consultation_id: uuid.UUID
    kind: ConsultationKind
    offered_to: uuid.UUID | None = None
    nominated: uuid.UUID | None = None
    wait_for_nominated: bool = False
    passed_over: frozenset[uuid.UUID] = frozenset()

    def may_go_to(self, staff_id: uuid.UUID) -> bool:
        """Routing's reach: only the nominee if she waits for them, never who passed on it."""
        if self.wait_for_nominated and self.nominated is not None:
            return staff_id == self.nominated
        return staff_id not in self.passed_over


@dataclass(frozen=True)
class Estimate:
    seconds: int | None
    # Advisors online (available or busy) whom routing could offer this consultation to.
    advisors: int


def remaining(handle_seconds: float, elapsed: float) -> float:
    return max(handle_seconds - elapsed, handle_seconds * REMAINING_FLOOR)


@dataclass
class _Free:
    """When a desk can start a call, and each of its chat slots a chat."""

    handle: float
    call: float
    chats: list[float] = field(default_factory=list)

    def start(self, kind: ConsultationKind) -> float:
        if kind == ConsultationKind.CHAT:
            # A call in progress blocks new offers of any kind (routing.can_take).
            return max(self.call, min(self.chats)) if self.chats else float("inf")
        return self.call

    def take(self, kind: ConsultationKind, at: float) -> None:
        if kind == ConsultationKind.CHAT:
            if self.chats:
                slot = self.chats.index(min(self.chats))
                self.chats[slot] = at + self.handle
        else:
            self.call = at + self.handle


def _desk_state(desk: Desk, max_chats: int) -> _Free:
    call = 0.0 if desk.call_elapsed is None else remaining(desk.handle_seconds, desk.call_elapsed)
    held = sorted(remaining(desk.handle_seconds, e) for e in desk.chats_elapsed)[:max_chats]
    chats = held + [0.0] * (max_chats - len(held))
    return _Free(handle=desk.handle_seconds, call=call, chats=chats)


def estimate(waiters: Sequence[Waiter], desks: Iterable[Desk], max_chats: int) -> dict[uuid.UUID, Estimate]:
    """Each waiting consultation's likely wait in seconds (see the module's docstring)."""
    free = {d.staff_id: _desk_state(d, max_chats) for d in desks}
    order = sorted(free)  # ties go the same way every time
    out: dict[uuid.UUID, Estimate] = {}
    # Offers in hand come first: that advisor is deciding on it now.
    for w in waiters:
        if w.offered_to is not None:
            if w.passed_over or (w.wait_for_nominated and w.nominated is not None):
                asked = sum(1 for s in order if w.may_go_to(s) or s == w.offered_to)
            else:
                asked = len(order)  # anyone may be asked
            out[w.consultation_id] = Estimate(0, asked)
            if w.offered_to in free:
                free[w.offered_to].take(w.kind, 0.0)
    # Most waiters may go to anyone: the desk that frees first comes off a heap per kind
    # (first in ``order`` among equals, as the scan below picks), so a long queue before many
    # desks costs a log per waiter, not a pass over every desk.
    soonest = _Soonest(free, order)
    for w in waiters:
        if w.offered_to is not None:
            continue
        if not w.passed_over and not (w.wait_for_nominated and w.nominated is not None):
            if not order:
                out[w.consultation_id] = Estimate(None, 0)
                continue
            best, at = soonest.pop(w.kind)
            reached = len(order)
        else:
            reach = [s for s in order if w.may_go_to(s)]
            if not reach:
                out[w.consultation_id] = Estimate(None, 0)
                continue
            best = min(reach, key=lambda s: free[s].start(w.kind))
            at = free[best].start(w.kind)
            reached = len(reach)
        free[best].take(w.kind, at)
        soonest.moved(best)
        out[w.consultation_id] = Estimate(round(at), reached)
    return out


class _Soonest:
    """Per kind, a heap of (when the desk can start it, its place in ``order``), kept
    current lazily: a desk that takes work gets fresh entries, its older ones are skipped."""

    def __init__(self, free: dict[uuid.UUID, _Free], order: list[uuid.UUID]) -> None:
        self._free = free
        self._order = order
        self._index = {s: n for n, s in enumerate(order)}
        self._version = dict.fromkeys(order, 0)
        self._heaps: dict[ConsultationKind, list[tuple[float, int, int]]] = {}

    def _heap(self, kind: ConsultationKind) -> list[tuple[float, int, int]]:
        if kind not in self._heaps:
            heap = [(self._free[s].start(kind), n, self._version[s]) for n, s in enumerate(self._order)]
            heapq.heapify(heap)
            self._heaps[kind] = heap
        return self._heaps[kind]

    def pop(self, kind: ConsultationKind) -> tuple[uuid.UUID, float]:
        heap = self._heap(kind)
        while True:
            at, n, version = heap[0]
            staff_id = self._order[n]
            if version == self._version[staff_id]:
                return staff_id, at
            heapq.heappop(heap)

    def moved(self, staff_id: uuid.UUID) -> None:
        self._version[staff_id] += 1
        version, n = self._version[staff_id], self._index[staff_id]
        for kind, heap in self._heaps.items():
            heapq.heappush(heap, (self._free[staff_id].start(kind), n, version))
