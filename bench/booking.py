"""Booking benchmark: slot search for "any" advisor over 50 advisors × 30 days, and 200
concurrent booking attempts at one slot.

Runs the real app in this process on a fresh SQLite database in a temporary directory (or
on PostgreSQL with ``--database-url``), served on 127.0.0.1 by aiohttp. Demo-like data:
50 advisors in three time zones (Tokyo, London, New York) with weekday hours, a day off
each, and a few existing bookings each.

    .venv/bin/python bench/booking.py --quick     # within a minute
    .venv/bin/python bench/booking.py             # more repetitions

The last stdout line is one JSON object:
``slot_search_ms`` (p50 of the search itself: its three queries and the slot rules, as the
endpoint runs it), ``slot_search_http_ms`` (p50 of the whole GET, JSON included),
``slots`` (how many starts the search found), ``concurrent_attempts``, ``successes``,
``conflicts``, ``budgets``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import free_port, percentile, say
from livedesk.app import create_app
from livedesk.booking import service
from livedesk.kit.context import DB
from livedesk.kit.logging import configure_logging
from livedesk.kit.migrate import upgrade
from livedesk.models import (
    AvailabilityException,
    Booking,
    BookingStatus,
    ConsultationType,
    ExceptionKind,
    Role,
    Shopper,
    Staff,
    WeeklyHours,
)
from livedesk.settings import Settings

ADVISORS = 50
DAYS = 30
ATTEMPTS = 200
ZONES = ("Asia/Tokyo", "Europe/London", "America/New_York")


async def seed(app: web.Application) -> tuple[uuid.UUID, uuid.UUID]:
    """50 advisors with weekday hours 9–18 local, one day off, three bookings each."""
    now = datetime.now(UTC)
    type_id = uuid.uuid4()
    shopper_id = uuid.uuid4()
    first_advisor = uuid.uuid4()
    async with app[DB].transaction() as session:
        session.add(
            ConsultationType(
                id=type_id,
                name="カウンセリング",
                name_en="Counselling",
                duration_minutes=30,
                buffer_before_minutes=0,
                buffer_after_minutes=10,
                min_notice_minutes=60,
                horizon_days=60,
                required_skills=[],
                languages=[],
            )
        )
        session.add(Shopper(id=shopper_id, display_name="Bench", email="bench@example.jp"))
        await session.flush()
        for i in range(ADVISORS):
            staff_id = first_advisor if i == 0 else uuid.uuid4()
            session.add(
                Staff(
                    id=staff_id,
                    email=f"advisor{i}@bench.example",
                    password_hash="!",  # noqa: S106 - nobody signs in as a bench advisor
                    role=Role.ADVISOR,
                    display_name=f"Advisor {i}",
                    timezone=ZONES[i % len(ZONES)],
                )
            )
            await session.flush()
            for weekday in range(5):
                session.add(
                    WeeklyHours(
                        id=uuid.uuid4(), staff_id=staff_id, weekday=weekday, start_minute=540, end_minute=1080
                    )
                )
            session.add(
                AvailabilityException(
                    id=uuid.uuid4(),
                    staff_id=staff_id,
                    day=(now + timedelta(days=3 + i % 20)).date(),
                    kind=ExceptionKind.OFF,
                )
            )
            for k in range(3):
                start = (now + timedelta(days=2 + k * 5 + i % 7)).replace(minute=0, second=0, microsecond=0)
                session.add(
                    Booking(
                        id=uuid.uuid4(),
                        consultation_type_id=type_id,
                        advisor_id=staff_id,
                        shopper_id=shopper_id,
                        status=BookingStatus.CONFIRMED,
                        starts_at=start,
                        ends_at=start + timedelta(minutes=30),
                        block_start=start,
                        block_end=start + timedelta(minutes=40),
                        shopper_timezone="Asia/Tokyo",
                        contact_email="bench@example.jp",
                        extra={},
                    )
                )
    return type_id, first_advisor


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    repeats = 20 if args.quick else 100
    configure_logging("error", "console")
    with tempfile.TemporaryDirectory(prefix="livedesk-bench-booking-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"
        say(f"database {url.split('@')[-1]}")
        await upgrade(url)
        port = free_port()
        settings = Settings(
            data_dir=Path(tmp),
            database_url=url,
            secret_key=SecretStr(uuid.uuid4().hex),
            log_level="error",
            port=port,
            booking_rate_limit="100000/minute",
        )
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        try:
            type_id, advisor_id = await seed(app)
            first = (datetime.now(UTC) + timedelta(days=1)).date()
            last = first + timedelta(days=DAYS - 1)
            say(f"{ADVISORS} advisors × {DAYS} days, 'any', {repeats} searches")
            timings: list[float] = []
            slots = 0
            for _ in range(repeats):
                started = time.perf_counter()
                async with app[DB].read() as session:
                    found = await service.search_slots(
                        session,
                        settings,
                        type_id=type_id,
                        advisor_id=None,
                        first=first,
                        last=last,
                        timezone="Asia/Tokyo",
                    )
                timings.append((time.perf_counter() - started) * 1000)
                slots = len(found)
            base = f"http://127.0.0.1:{port}"
            http_timings: list[float] = []
            async with aiohttp.ClientSession() as http:
                query = f"type_id={type_id}&start={first}&end={last}&timezone=Asia/Tokyo&advisor=any"
                for _ in range(max(5, repeats // 2)):
                    started = time.perf_counter()
                    async with http.get(f"{base}/api/v1/booking/slots?{query}") as response:
                        assert response.status == 200, await response.text()
                        await response.read()
                    http_timings.append((time.perf_counter() - started) * 1000)
                search_p50, http_p50 = statistics.median(timings), statistics.median(http_timings)
                say(f"search p50 {search_p50:.1f} ms, HTTP p50 {http_p50:.1f} ms")
                # 200 concurrent attempts at one free slot of one advisor.
                async with app[DB].read() as session:
                    free = await service.search_slots(
                        session,
                        settings,
                        type_id=type_id,
                        advisor_id=advisor_id,
                        first=first,
                        last=last,
                        timezone="Asia/Tokyo",
                    )
                start = free[len(free) // 2]
                when = datetime.fromtimestamp(start, UTC).isoformat()

                async def attempt(i: int) -> str:
                    body: dict[str, Any] = {
                        "type_id": str(type_id),
                        "advisor_id": str(advisor_id),
                        "start": when,
                        "timezone": "Asia/Tokyo",
                        "locale": "ja",
                        "contact": {"name": f"B{i}", "email": f"racer{i}@bench.example"},
                    }
                    async with http.post(f"{base}/api/v1/bookings", json=body) as response:
                        data = await response.json()
                        return "ok" if response.status == 201 else str(data["error"]["code"])

                say(f"{ATTEMPTS} concurrent attempts at one slot")
                outcomes = Counter(await asyncio.gather(*(attempt(i) for i in range(ATTEMPTS))))
        finally:
            await runner.cleanup()
    result = {
        "mode": "quick" if args.quick else "full",
        "database": "postgresql" if args.database_url else "sqlite",
        "advisors": ADVISORS,
        "days": DAYS,
        "slots": slots,
        "slot_search_ms": round(statistics.median(timings), 2),
        "slot_search_p90_ms": round(percentile(timings, 90), 2),
        "slot_search_http_ms": round(statistics.median(http_timings), 2),
        "concurrent_attempts": ATTEMPTS,
        "successes": outcomes.get("ok", 0),
        "conflicts": outcomes.get("slot_taken", 0),
        "other_outcomes": {k: v for k, v in outcomes.items() if k not in {"ok", "slot_taken"}},
        "budgets": {"slot_search_ms": 50, "successes": 1},
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
