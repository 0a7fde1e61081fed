"""Bookable start times — pure rules, no I/O.

An advisor's week is kept as wall-clock minutes in the advisor's own time zone, so "Mondays
9:00–17:00" stays 9:00–17:00 local on both sides of a DST change. Each local day's windows
become real instants (epoch seconds) through ``zoneinfo``; from then on everything is plain
integer arithmetic on instants, which is what makes the result right across DST changes (a
day with a spring-forward gap simply has an hour less of real time) and fast enough for 50
advisors × 30 days.

A start ``t`` is free when the appointment ``[t, t + duration)`` lies inside a window, ``t``
is on the step grid (counted from the window's start, aligned to the step in local time),
and the block ``[t - buffer_before, t + duration + buffer_after)`` overlaps no other live
booking's block (blocks carry their own buffers, so buffers add up between bookings).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DAY_MINUTES = 24 * 60

# (start, end) in minutes from local midnight, end exclusive.
MinuteSpan = tuple[int, int]
# (start, end) in epoch seconds, end exclusive.
Span = tuple[int, int]


@dataclass(frozen=True)
class DayException:
    """``off`` with no minutes is the whole day off; ``extra`` adds hours."""

    kind: str
    start_minute: int | None = None
    end_minute: int | None = None


@dataclass(frozen=True)
class AdvisorCalendar:
    advisor_id: uuid.UUID
    timezone: str
    # weekday (0 = Monday) → spans
    weekly: dict[int, list[MinuteSpan]]
    exceptions: dict[date, list[DayException]] = field(default_factory=dict)
    # Blocks of the advisor's live bookings, buffers included, as epoch-second spans.
    busy: list[Span] = field(default_factory=list)


@dataclass(frozen=True)
class SlotRules:
    duration_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    step_minutes: int


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def merge_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping spans (touching spans are joined)."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract_spans(
    spans: Sequence[tuple[int, int]], holes: Iterable[tuple[int, int]]
) -> list[tuple[int, int]]:
    """``spans`` (sorted, merged) minus ``holes``."""
    return _subtract_merged(spans, merge_spans(holes))


def _subtract_merged(
    spans: Sequence[tuple[int, int]], holes: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    result = list(spans)
    for h_start, h_end in holes:
        next_result: list[tuple[int, int]] = []
        for start, end in result:
            if h_end <= start or h_start >= end:
                next_result.append((start, end))
                continue
            if start < h_start:
                next_result.append((start, h_start))
            if h_end < end:
                next_result.append((h_end, end))
        result = next_result
    return result


def day_spans(calendar: AdvisorCalendar, day: date) -> list[MinuteSpan]:
    """The advisor's working spans on one local day: the week's hours, minus time off, plus
    extra hours."""
    base = merge_spans(calendar.weekly.get(day.weekday(), ()))
    exceptions = calendar.exceptions.get(day)
    if not exceptions:
        return base
    offs: list[MinuteSpan] = []
    extras: list[MinuteSpan] = []
    for exc in exceptions:
        if exc.kind == "off":
            if exc.start_minute is None or exc.end_minute is None:
                offs.append((0, DAY_MINUTES))
            else:
                offs.append((exc.start_minute, exc.end_minute))
        elif exc.start_minute is not None and exc.end_minute is not None:
            extras.append((exc.start_minute, exc.end_minute))
    return merge_spans([*subtract_spans(base, offs), *extras])


@lru_cache(maxsize=65536)
def local_instant(day: date, minute: int, tz_name: str) -> int:
    """Epoch seconds of a wall-clock minute on a local day. A time inside a spring-forward gap
    is read with the offset before the change (02:30 that does not exist → 03:30 after it);
    a repeated time in a fall-back hour is its first occurrence. Cached: advisors in one
    zone with the same hours share the answers."""
    if minute >= DAY_MINUTES:
        day, minute = day + timedelta(days=minute // DAY_MINUTES), minute % DAY_MINUTES
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone(tz_name))
    return int(local.timestamp())


def free_starts(calendar: AdvisorCalendar, rules: SlotRules, lo: int, hi: int) -> list[range]:
    """The advisor's free start times in ``[lo, hi)`` (epoch seconds), as ranges of
    instants (step = the slot step in seconds)."""
    if hi <= lo:
        return []
    tz = zone(calendar.timezone)
    step = rules.step_minutes * 60
    duration = rules.duration_minutes * 60
    before = rules.buffer_before_minutes * 60
    after = rules.buffer_after_minutes * 60
    # A start t is forbidden by a busy block (bs, be) when its own block overlaps it:
    # t - before < be and t + duration + after > bs.
    forbidden = merge_spans((bs - duration - after + 1, be + before) for bs, be in calendar.busy)
    first_day = datetime.fromtimestamp(lo, tz).date() - timedelta(days=1)
    # The last appointment may end on a later local day than it starts.
    last_day = datetime.fromtimestamp(hi + duration, tz).date()
    # Each local day's stretches as instants; a stretch that ends where the next begins (at
    # local midnight, say) is one window, so an appointment may run past midnight. A merged
    # window keeps the grid of its first stretch.
    windows: list[tuple[int, int]] = []
    day = first_day
    one_day = timedelta(days=1)
    weekly = {weekday: merge_spans(spans) for weekday, spans in calendar.weekly.items()}
    while day <= last_day:
        spans = day_spans(calendar, day) if day in calendar.exceptions else weekly.get(day.weekday(), ())
        for start_minute, end_minute in spans:
            aligned = -(-start_minute // rules.step_minutes) * rules.step_minutes
            window_start = local_instant(day, aligned, calendar.timezone)
            window_end = local_instant(day, end_minute, calendar.timezone)
            if windows and window_start <= windows[-1][1] and start_minute == 0:
                windows[-1] = (windows[-1][0], max(windows[-1][1], window_end))
            elif window_end > window_start:
                windows.append((window_start, window_end))
        day += one_day
    out: list[range] = []
    for window_start, window_end in windows:
        last_start = min(window_end - duration, hi - 1)
        first = max(window_start, lo)
        if first > last_start:
            continue
        holes = [h for h in forbidden if h[0] <= last_start and h[1] > first]
        for span_start, span_end in _subtract_merged([(first, last_start + 1)], holes):
            # First grid point (counted from the window's start) at or after span_start.
            offset = -(-(span_start - window_start) // step) * step
            begin = window_start + offset
            if begin < span_end:
                out.append(range(begin, span_end, step))
    return out


def starts_of(ranges: Iterable[range]) -> list[int]:
    result: list[int] = []
    for r in ranges:
        result.extend(r)
    return result


def is_free(calendar: AdvisorCalendar, rules: SlotRules, start: int) -> bool:
    """Whether exactly this start is one of the advisor's free starts."""
    return any(start in r for r in free_starts(calendar, rules, start, start + 1))


def merged_starts(calendars: Iterable[AdvisorCalendar], rules: SlotRules, lo: int, hi: int) -> list[int]:
    """ "Any advisor": every start at least one of the advisors has free, in order."""
    merged: set[int] = set()
    for calendar in calendars:
        for r in free_starts(calendar, rules, lo, hi):
            merged.update(r)
    return sorted(merged)


def to_utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
