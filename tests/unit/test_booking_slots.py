"""Slot rules without I/O: weekly hours in the advisor's zone, exceptions, buffers, existing
bookings, steps — and DST changes in London, New York and Tokyo, seen from each other."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from livedesk.booking.slots import (
    AdvisorCalendar,
    DayException,
    SlotRules,
    free_starts,
    is_free,
    merged_starts,
    starts_of,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
RULES = SlotRules(duration_minutes=30, buffer_before_minutes=0, buffer_after_minutes=0, step_minutes=15)


def every_day(start: int, end: int) -> dict[int, list[tuple[int, int]]]:
    return {weekday: [(start, end)] for weekday in range(7)}


def cal(tz: str, weekly: dict[int, list[tuple[int, int]]], **kw: object) -> AdvisorCalendar:
    return AdvisorCalendar(advisor_id=uuid.uuid4(), timezone=tz, weekly=weekly, **kw)  # type: ignore[arg-type]


def ts(value: datetime) -> int:
    return int(value.timestamp())


def local_day(tz: ZoneInfo, day: date) -> tuple[int, int]:
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return ts(start), ts(end)


def starts_in(calendar: AdvisorCalendar, tz: ZoneInfo, day: date, rules: SlotRules = RULES) -> list[datetime]:
    lo, hi = local_day(tz, day)
    return [datetime.fromtimestamp(t, tz) for t in starts_of(free_starts(calendar, rules, lo, hi))]


def test_london_hours_stay_local_across_spring_forward_seen_from_tokyo() -> None:
    london = cal("Europe/London", every_day(9 * 60, 10 * 60))
    # Saturday 28 March 2026 is GMT (UTC+0); Sunday 29 March is BST (UTC+1).
    sat = starts_in(london, TOKYO, date(2026, 3, 28))
    sun = starts_in(london, TOKYO, date(2026, 3, 29))
    assert [d.strftime("%H:%M") for d in sat] == ["18:00", "18:15", "18:30"]
    assert [d.strftime("%H:%M") for d in sun] == ["17:00", "17:15", "17:30"]
    assert all(d.astimezone(LONDON).hour == 9 for d in sat + sun)


def test_spring_forward_gap_has_no_slots_and_an_hour_less() -> None:
    london = cal("Europe/London", every_day(0, 4 * 60))
    rules = SlotRules(15, 0, 0, 15)
    sunday = starts_in(london, LONDON, date(2026, 3, 29), rules)
    # 00:00–04:00 local is three real hours that day: 12 quarter-hour starts, none at 01:xx.
    assert len(sunday) == 12
    assert not [d for d in sunday if d.hour == 1]
    assert sunday[4].strftime("%H:%M %Z") == "02:00 BST"
    assert len(starts_in(london, LONDON, date(2026, 3, 28), rules)) == 16


def test_fall_back_repeats_an_hour_in_new_york() -> None:
    ny = cal("America/New_York", every_day(0, 4 * 60))
    rules = SlotRules(15, 0, 0, 15)
    sunday = starts_in(ny, NEW_YORK, date(2026, 11, 1), rules)
    # Five real hours: 01:00–01:45 happens twice, first EDT then EST.
    assert len(sunday) == 20
    one_am = [d for d in sunday if d.hour == 1]
    assert len(one_am) == 8
    assert len({d.astimezone(UTC) for d in sunday}) == 20
    assert {d.utcoffset() for d in one_am} == {timedelta(hours=-4), timedelta(hours=-5)}


def test_london_fall_back_and_new_york_shopper_between_the_two_changes() -> None:
    london = cal("Europe/London", every_day(9 * 60, 9 * 60 + 30))
    # Between 8 March (US change) and 29 March (UK change), London 09:00 is 05:00 in New York,
    # before and after both it is 04:00.
    assert [d.strftime("%H:%M") for d in starts_in(london, NEW_YORK, date(2026, 3, 7))] == ["04:00"]
    assert [d.strftime("%H:%M") for d in starts_in(london, NEW_YORK, date(2026, 3, 16))] == ["05:00"]
    assert [d.strftime("%H:%M") for d in starts_in(london, NEW_YORK, date(2026, 3, 30))] == ["04:00"]
    # Autumn: UK changes 25 October, US 1 November.
    assert [d.strftime("%H:%M") for d in starts_in(london, NEW_YORK, date(2026, 10, 24))] == ["04:00"]
    assert [d.strftime("%H:%M") for d in starts_in(london, NEW_YORK, date(2026, 10, 27))] == ["05:00"]
    assert [d.strftime("%H:%M") for d in starts_in(london, NEW_YORK, date(2026, 11, 2))] == ["04:00"]


def test_tokyo_advisor_seen_from_london_shifts_with_london_dst_only() -> None:
    tokyo = cal("Asia/Tokyo", every_day(18 * 60, 18 * 60 + 30))
    # Tokyo 18:00 = 09:00 UTC: 09:00 GMT before 29 March, 10:00 BST after.
    assert [d.strftime("%H:%M") for d in starts_in(tokyo, LONDON, date(2026, 3, 28))] == ["09:00"]
    assert [d.strftime("%H:%M") for d in starts_in(tokyo, LONDON, date(2026, 3, 29))] == ["10:00"]
    assert [d.strftime("%H:%M") for d in starts_in(tokyo, LONDON, date(2026, 10, 26))] == ["09:00"]


def test_shopper_day_boundaries_cross_the_advisor_day() -> None:
    # A New York evening advisor's 20:00–21:00 is the next morning in Tokyo.
    ny = cal("America/New_York", every_day(20 * 60, 21 * 60))
    tokyo_day = starts_in(ny, TOKYO, date(2026, 7, 2))
    assert [d.strftime("%d %H:%M") for d in tokyo_day] == ["02 09:00", "02 09:15", "02 09:30"]


def test_five_minute_steps_and_alignment() -> None:
    advisor = cal("Asia/Tokyo", every_day(10 * 60 + 2, 11 * 60))
    rules = SlotRules(20, 0, 0, 5)
    starts = starts_in(advisor, TOKYO, date(2026, 5, 1), rules)
    # Window starts 10:02 → first start on the 5-minute grid is 10:05; last 10:40 (ends 11:00).
    assert starts[0].strftime("%H:%M") == "10:05"
    assert starts[-1].strftime("%H:%M") == "10:40"
    assert len(starts) == 8


def test_existing_bookings_and_buffers_remove_starts() -> None:
    day = date(2026, 5, 1)
    base = datetime(2026, 5, 1, 10, tzinfo=TOKYO)
    # A booking 11:00–11:30 with 15 minutes after it (block 11:00–11:45).
    busy = [(ts(base + timedelta(hours=1)), ts(base + timedelta(hours=1, minutes=45)))]
    advisor = cal("Asia/Tokyo", every_day(10 * 60, 13 * 60), busy=busy)
    rules = SlotRules(30, 15, 0, 15)
    times = [d.strftime("%H:%M") for d in starts_in(advisor, TOKYO, day, rules)]
    # Our own 15-minute buffer before: 10:15 is the latest start before (block 10:00–10:45... ends
    # at 10:45 ≤ 11:00), 10:30 would end 11:00 — allowed; 10:45 overlaps. After: block must
    # start ≥ 11:45, so start ≥ 12:00.
    assert "10:30" in times
    assert "10:45" not in times
    assert "11:45" not in times
    assert "12:00" in times
    assert times[-1] == "12:30"


def test_exceptions_day_off_partial_off_and_extra_hours() -> None:
    weekly = every_day(9 * 60, 12 * 60)
    off_day = date(2026, 6, 1)
    partial = date(2026, 6, 2)
    extra = date(2026, 6, 3)
    advisor = cal(
        "Europe/London",
        weekly,
        exceptions={
            off_day: [DayException("off")],
            partial: [DayException("off", 10 * 60, 11 * 60)],
            extra: [DayException("extra", 18 * 60, 19 * 60)],
        },
    )
    assert starts_in(advisor, LONDON, off_day) == []
    partial_times = [d.strftime("%H:%M") for d in starts_in(advisor, LONDON, partial)]
    assert "09:30" in partial_times
    assert "09:45" not in partial_times
    assert "10:30" not in partial_times
    assert "11:00" in partial_times
    extra_times = [d.strftime("%H:%M") for d in starts_in(advisor, LONDON, extra)]
    assert "18:00" in extra_times
    assert "18:30" in extra_times
    assert "18:45" not in extra_times


def test_any_merges_advisors_and_is_free_checks_one_start() -> None:
    a = cal("Asia/Tokyo", every_day(10 * 60, 11 * 60))
    b = cal("Asia/Tokyo", every_day(10 * 60 + 30, 12 * 60))
    lo, hi = local_day(TOKYO, date(2026, 5, 1))
    merged = merged_starts([a, b], RULES, lo, hi)
    assert len(merged) == len(set(merged))
    assert datetime.fromtimestamp(merged[0], TOKYO).strftime("%H:%M") == "10:00"
    assert datetime.fromtimestamp(merged[-1], TOKYO).strftime("%H:%M") == "11:30"
    eleven_thirty = ts(datetime(2026, 5, 1, 11, 30, tzinfo=TOKYO))
    assert is_free(b, RULES, eleven_thirty)
    assert not is_free(a, RULES, eleven_thirty)
    # Off the grid is not a slot.
    assert not is_free(b, RULES, eleven_thirty + 60)


def test_an_appointment_may_run_past_local_midnight() -> None:
    # Late hours one day and early hours the next are one stretch of time.
    late = {d: [(22 * 60, 24 * 60)] for d in range(7)}
    for d in range(7):
        late[d].append((0, 2 * 60))
    advisor = cal("Europe/London", late)
    rules = SlotRules(60, 0, 0, 15)
    starts = starts_in(advisor, LONDON, date(2026, 6, 10), rules)
    times = [d.strftime("%H:%M") for d in starts]
    assert "23:30" in times  # ends 00:30 the next day
    assert "00:45" in times
    assert "01:15" not in times  # would end after 02:00
    # A window that ends at midnight with nothing after it still ends there.
    evening = cal("Europe/London", {d: [(22 * 60, 24 * 60)] for d in range(7)})
    evening_times = [d.strftime("%H:%M") for d in starts_in(evening, LONDON, date(2026, 6, 10), rules)]
    assert evening_times[-1] == "23:00"


def test_one_start_just_before_midnight_is_free_when_the_next_day_continues() -> None:
    # What the booking check asks: exactly this start, whose appointment ends tomorrow.
    all_day = cal("Asia/Tokyo", every_day(0, 24 * 60))
    late = ts(datetime(2026, 11, 24, 23, 45, tzinfo=TOKYO))
    assert is_free(all_day, RULES, late)
    monday_only = cal("Asia/Tokyo", {0: [(0, 24 * 60)]})  # 23 November 2026 is a Monday
    assert not is_free(monday_only, RULES, ts(datetime(2026, 11, 23, 23, 45, tzinfo=TOKYO)))
    assert is_free(monday_only, RULES, ts(datetime(2026, 11, 23, 23, 30, tzinfo=TOKYO)))
