"""Outgoing webhooks per endpoint (issue 23): a healthy receiver's delivery latency alone (the
baseline) and beside a receiver that never answers, and the gaps between retries against the
configured schedule.

The delivery job runs in this process against a fresh migrated database (SQLite by default,
``--database-url`` for PostgreSQL); the receivers are real aiohttp servers on 127.0.0.1. Events
are queued one after another, each once the previous one reached the healthy receiver, so a
latency is commit → arrival. The last stdout line is one JSON object.

    PYTHONPATH=src .venv/bin/python bench/webhooks.py [--events 20] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiohttp import web
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import percentile, say
from _realtime_seed import fresh_database
from livedesk.integrations.delivery import DeliveryJob
from livedesk.integrations.endpoints import new_secret
from livedesk.kit.db import Database
from livedesk.models.integrations import WebhookEndpoint
from livedesk.outbox import webhooks
from livedesk.settings import Settings


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


async def receiver(hang: bool, statuses: list[int] | None = None) -> tuple[web.AppRunner, str, list[float]]:
    arrivals: list[float] = []
    never = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        await request.read()
        if hang:
            await never.wait()
        return web.Response(status=statuses.pop(0) if statuses else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/hook", arrivals


async def add_endpoint(db: Database, url: str) -> None:
    async with db.transaction() as session:
        session.add(
            WebhookEndpoint(id=uuid.uuid4(), url=url, secret=new_secret(), event_types=[], active=True)
        )


async def latencies(db: Database, arrivals: list[float], n: int) -> list[float]:
    took = []
    for i in range(n):
        before = len(arrivals)
        async with db.transaction() as session:
            await webhooks.enqueue(session, webhooks.BOOKING_CREATED, {"n": i})
        committed = time.monotonic()
        deadline = committed + 60
        while len(arrivals) <= before:
            if time.monotonic() > deadline:
                raise SystemExit("a healthy delivery took over 60 s")
            await asyncio.sleep(0.002)
        took.append(arrivals[before] - committed)
    return took


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    load_start = load()
    with tempfile.TemporaryDirectory() as tmp:
        url = await fresh_database(Path(tmp), args.database_url)
        settings = Settings(
            data_dir=Path(tmp),
            database_url=url,
            webhook_poll_seconds=0.05,
            webhook_timeout_seconds=30.0,
            webhook_backoff_seconds=0.5,
            webhook_max_attempts=5,
            webhook_allow_networks="127.0.0.0/8",
            log_level="warning",
        )
        db = Database(url)
        runners = []
        try:
            healthy_runner, healthy_url, healthy = await receiver(hang=False)
            dead_runner, dead_url, _ = await receiver(hang=True)
            runners += [healthy_runner, dead_runner]
            await add_endpoint(db, healthy_url)
            job = DeliveryJob(db, settings)
            await job.start()
            try:
                say("healthy endpoint alone")
                baseline = await latencies(db, healthy, args.events)
                await add_endpoint(db, dead_url)
                say("beside an endpoint that never answers")
                beside = await latencies(db, healthy, args.events)
            finally:
                await job.stop()
            # Retries: 500, 500, 500, then 200; backoff 0.5 s doubling, poll every 5 s.
            flaky_runner, flaky_url, flaky = await receiver(hang=False, statuses=[500, 500, 500])
            runners.append(flaky_runner)
            async with db.transaction() as session:
                for endpoint in (await session.scalars(select(WebhookEndpoint))).all():
                    endpoint.active = False
            await add_endpoint(db, flaky_url)
            slow_tick = settings.model_copy(update={"webhook_poll_seconds": 5.0})
            job = DeliveryJob(db, slow_tick)
            await job.start()
            try:
                async with db.transaction() as session:
                    await webhooks.enqueue(session, webhooks.PAYMENT_SUCCEEDED, {"id": "p"})
                job.kick()
                deadline = time.monotonic() + 60
                while len(flaky) < 4:
                    if time.monotonic() > deadline:
                        raise SystemExit("the retries did not arrive within 60 s")
                    await asyncio.sleep(0.01)
            finally:
                await job.stop()
            gaps = [round(b - a, 3) for a, b in itertools.pairwise(flaky)]
        finally:
            for runner in runners:
                await runner.cleanup()
            await db.dispose()
    base_p50 = statistics.median(baseline)
    beside_p50 = statistics.median(beside)
    print(
        json.dumps(
            {
                "database": "postgresql" if args.database_url else "sqlite",
                "events": args.events,
                "baseline_p50_ms": round(base_p50 * 1000, 1),
                "baseline_max_ms": round(max(baseline) * 1000, 1),
                "beside_dead_p50_ms": round(beside_p50 * 1000, 1),
                "beside_dead_p99_ms": round(percentile(beside, 99) * 1000, 1),
                "beside_dead_max_ms": round(max(beside) * 1000, 1),
                "p50_ratio": round(beside_p50 / base_p50, 2),
                "retry_schedule_s": [0.5, 1.0, 2.0],
                "retry_gaps_s": gaps,
                "poll_seconds_during_retries": 5.0,
                "load_average_at_start": load_start,
                "load_average_at_end": load(),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
