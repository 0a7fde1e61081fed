"""The arithmetic of the day's figures and of the alerts, on a fixed day with rows made by
hand (no database: the rules alone)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from livedesk.models import ConsultationKind, ConsultationStatus
from livedesk.supervision.board import alerts
from livedesk.supervision.figures import Row, compute, day_window
from livedesk.supervision.schemas import BoardConsultation, RevenueLine, Satisfaction, Thresholds
from livedesk.supervision.sources import Money

S = ConsultationStatus
TOKYO = "Asia/Tokyo"
DAY = date(2026, 3, 10)
# 10:00 in Tokyo on DAY.
TEN = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
ALICE = uuid.uuid4()
BOB = uuid.uuid4()


def row(
    status: ConsultationStatus,
    queued: datetime,
    *,
    wait: float | None = None,
    handle: float | None = None,
    closed_after: float | None = None,
    advisor: uuid.UUID | None = None,
    nominated: uuid.UUID | None = None,
) -> Row:
    accepted = queued + timedelta(seconds=wait) if wait is not None else None
    closed = None
    if accepted is not None and handle is not None:
        closed = accepted + timedelta(seconds=handle)
    elif closed_after is not None:
        closed = queued + timedelta(seconds=closed_after)
    return Row(
        status=status,
        requested_at=queued,
        queued_at=queued,
        accepted_at=accepted,
        closed_at=closed,
        advisor_id=advisor,
        nominated_advisor_id=nominated,
    )


ROWS = [
    # 10:00 — answered after 30 s, closed 300 s later (Alice).
    row(S.CLOSED, TEN, wait=30, handle=300, advisor=ALICE),
    # 10:05 — answered after 90 s, closed 500 s later (Bob).
    row(S.CLOSED, TEN + timedelta(minutes=5), wait=90, handle=500, advisor=BOB),
    # 10:20 — answered after 60 s, still in the call (Alice): no handle time yet.
    row(S.ACTIVE, TEN + timedelta(minutes=20), wait=60, advisor=ALICE),
    # 11:00 — left the queue after 200 s (nominated Bob).
    row(S.ABANDONED, TEN + timedelta(hours=1), closed_after=200, nominated=BOB),
    # 11:30 — nobody answered within 900 s.
    row(S.MISSED, TEN + timedelta(hours=1, minutes=30), closed_after=900),
    # 12:00 — still waiting at NOW (45 s so far).
    row(S.QUEUED, TEN + timedelta(hours=2)),
]
NOW = TEN + timedelta(hours=2, seconds=45)


def test_day_window_is_the_local_day_in_utc() -> None:
    start, end = day_window(DAY, TOKYO)
    assert start == datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    # A day with a DST change is 23 hours long (New York, spring forward on 2026-03-08).
    start, end = day_window(date(2026, 3, 8), "America/New_York")
    assert end - start == timedelta(hours=23)


def test_figures_of_a_fixed_day() -> None:
    money = Money(
        revenue=[
            RevenueLine(currency="JPY", amount_minor=12_800, paid_consultations=1),
            RevenueLine(currency="USD", amount_minor=4_500, paid_consultations=1),
        ],
        satisfaction=Satisfaction(responses=2, average_csat=4.5, average_nps=9.0),
    )
    f = compute(ROWS, day=DAY, timezone=TOKYO, now=NOW, money=money)
    assert (f.offered, f.answered, f.abandoned, f.missed, f.waiting) == (6, 3, 1, 1, 1)
    # Time to answer, over the answered: (30 + 90 + 60) / 3.
    assert f.average_wait_seconds == 60.0
    # The longest wait counts the missed one (900 s), the abandoned (200 s) and the waiting (45 s).
    assert f.longest_wait_seconds == 900.0
    # Handle time over the closed: (300 + 500) / 2.
    assert f.average_handle_seconds == 400.0
    # Two paid of three answered.
    assert f.paid_consultations == 2
    assert f.conversion == round(2 / 3, 4)
    assert [(r.currency, r.amount_minor) for r in f.revenue] == [("JPY", 12_800), ("USD", 4_500)]
    assert f.satisfaction is not None
    assert f.satisfaction.average_csat == 4.5
    # Per local hour: 10:00 has three offered and answered, 11:00 two (one abandoned), 12:00 one.
    by_hour = {h.hour: h for h in f.hours}
    assert len(f.hours) == 24
    assert (by_hour[10].offered, by_hour[10].answered, by_hour[10].average_wait_seconds) == (3, 3, 60.0)
    assert (by_hour[11].offered, by_hour[11].answered, by_hour[11].abandoned) == (2, 0, 1)
    assert by_hour[12].offered == 1
    assert sum(h.offered for h in f.hours) == f.offered


def test_figures_of_one_team() -> None:
    money = Money(revenue=[RevenueLine(currency="JPY", amount_minor=5_000, paid_consultations=1)])
    f = compute(
        ROWS, day=DAY, timezone=TOKYO, now=NOW, team_id=uuid.uuid4(), members=frozenset({BOB}), money=money
    )
    # Bob answered one and was nominated by the shopper who left; the rest are not his team's.
    assert (f.offered, f.answered, f.abandoned, f.missed, f.waiting) == (2, 1, 1, 0, 0)
    assert f.average_wait_seconds == 90.0
    assert f.longest_wait_seconds == 200.0
    assert f.average_handle_seconds == 500.0
    # Money is brand-wide: one paid of all three answered.
    assert f.conversion == round(1 / 3, 4)


def test_an_empty_day_has_no_averages() -> None:
    f = compute([], day=DAY, timezone=TOKYO, now=NOW)
    assert (f.offered, f.answered) == (0, 0)
    assert f.average_wait_seconds is None
    assert f.longest_wait_seconds is None
    assert f.average_handle_seconds is None
    assert f.conversion is None
    assert f.revenue == []
    assert f.satisfaction is None


def _open(status: ConsultationStatus, kind: ConsultationKind, started: datetime) -> BoardConsultation:
    active = status == S.ACTIVE
    return BoardConsultation(
        id=uuid.uuid4(),
        kind=kind,
        status=status,
        advisor_id=ALICE if active else None,
        offered_to_id=None,
        nominated_advisor_id=None,
        wait_for_nominated=False,
        skills=[],
        language=None,
        requested_at=started,
        queued_at=started,
        accepted_at=started if active else None,
        ended_at=None,
    )


def test_alerts_for_long_waits_and_long_calls() -> None:
    limits = Thresholds(long_wait_seconds=120, long_call_seconds=600)
    now = TEN
    long_wait = _open(S.QUEUED, ConsultationKind.VIDEO, now - timedelta(seconds=121))
    short_wait = _open(S.OFFERED, ConsultationKind.VIDEO, now - timedelta(seconds=119))
    long_call = _open(S.ACTIVE, ConsultationKind.VOICE, now - timedelta(seconds=700))
    short_call = _open(S.ACTIVE, ConsultationKind.VIDEO, now - timedelta(seconds=500))
    # A long chat is not a long call.
    long_chat = _open(S.ACTIVE, ConsultationKind.CHAT, now - timedelta(seconds=5000))
    found = alerts([long_wait, short_wait, long_call, short_call, long_chat], limits, now)
    assert [(a.kind, a.consultation_id, a.seconds) for a in found] == [
        ("long_call", long_call.id, 700),
        ("long_wait", long_wait.id, 121),
    ]
    assert found[0].advisor_id == ALICE
