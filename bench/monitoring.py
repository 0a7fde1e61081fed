"""Supervisor board benchmark: how fast board changes reach every supervisor with a busy floor.

    python bench/monitoring.py [--quick] [--redis URL]

One fresh ``livedesk serve`` subprocess on SQLite in a temporary directory (or two of them
sharing the database and Redis with ``--redis``: advisors and shoppers on the first,
supervisors on the second, so every change crosses processes). The database holds 200
advisors and 100 live video calls (one per advisor); every advisor has a socket open (so the
100 in a call are busy, the others available), and S supervisors watch the board.

1. ``board.snapshot`` with that floor: each supervisor asks for it repeatedly; latency of
   the answer (and ``board.figures``, today's figures).
2. Board changes: an open loop of real changes at a fixed rate — advisors switching between
   available and away (``presence.set``) and shoppers joining and leaving the queue
   (``queue.join`` / ``queue.leave``). Latency is from the moment the bench sends the change
   to the moment each supervisor receives the matching ``presence.changed`` /
   ``consultation.updated``: one sample per change per supervisor.
3. ``GET /metrics`` with that floor (scrape time).

Progress goes to stdout as ``[bench] …`` lines; the last stdout line is one JSON object with
``board_update_p99_ms`` and ``supervisors``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from _common import (
    RawSocket,
    ServerProcess,
    close_all,
    cpu_seconds,
    open_many,
    percentile,
    raise_open_files_limit,
    say,
    start_livedesk,
)
from _realtime_seed import fresh_database

PASSWORD = "bench password 1234"  # noqa: S105 - throwaway accounts in a temp database
ADVISORS = 200
LIVE_CALLS = 100


@dataclass(frozen=True)
class Sizes:
    mode: str
    supervisors: int
    snapshots_each: int
    change_rate: float  # changes per second
    change_seconds: float
    shoppers: int


# A floor of 200 advisors makes a few changes a second; the loop runs well above that.
FULL = Sizes("full", 20, 10, 20.0, 15.0, 50)
QUICK = Sizes("quick", 5, 4, 10.0, 6.0, 20)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


@dataclass(frozen=True)
class Floor:
    advisor_ids: list[str]
    advisor_cookies: list[str]
    supervisor_cookies: list[str]
    shopper_tokens: list[str]
    shopper_ids: list[str]


async def seed_floor(url: str, secret: str, sizes: Sizes) -> Floor:
    """200 advisors with login sessions, 100 of them in a live video call, the supervisors,
    and shoppers with visitor tokens — written straight to the database."""
    from livedesk.identity import VisitorClaims, VisitorTokens
    from livedesk.kit.clock import utcnow
    from livedesk.kit.db import Database
    from livedesk.models import (
        Brand,
        Consultation,
        ConsultationKind,
        ConsultationStatus,
        Role,
        Shopper,
        Staff,
        StaffSession,
        Team,
    )
    from livedesk.staff.passwords import hash_password

    tokens = VisitorTokens(secret, 24 * 3600)
    password_hash = hash_password(PASSWORD)
    now = utcnow()
    db = Database(url)

    def session_for(staff_id: uuid.UUID) -> tuple[StaffSession, str]:
        cookie = secrets.token_urlsafe(32)
        # The session table keeps only the SHA-256 of the cookie (identity/sessions.py).
        row = StaffSession(
            id=hashlib.sha256(cookie.encode()).hexdigest(),
            staff_id=staff_id,
            csrf_token=secrets.token_urlsafe(32),
        )
        return row, cookie

    advisor_ids: list[str] = []
    advisor_cookies: list[str] = []
    supervisor_cookies: list[str] = []
    shopper_tokens: list[str] = []
    shopper_ids: list[str] = []
    try:
        async with db.transaction() as session:
            session.add(Brand(slug="bench", name="Bench", timezone="Asia/Tokyo"))
            teams = [Team(id=uuid.uuid4(), name=f"Team {t}") for t in range(4)]
            session.add_all(teams)
            await session.flush()
            for i in range(ADVISORS):
                staff = Staff(
                    id=uuid.uuid4(),
                    email=f"advisor-{i}@bench.test",
                    password_hash=password_hash,
                    role=Role.ADVISOR,
                    display_name=f"Advisor {i}",
                    team_id=teams[i % len(teams)].id,
                )
                session.add(staff)
                await session.flush()
                row, cookie = session_for(staff.id)
                session.add(row)
                advisor_ids.append(str(staff.id))
                advisor_cookies.append(cookie)
                if i < LIVE_CALLS:
                    shopper = Shopper(id=uuid.uuid4(), display_name=f"Caller {i}")
                    session.add(shopper)
                    await session.flush()
                    session.add(
                        Consultation(
                            id=uuid.uuid4(),
                            shopper_id=shopper.id,
                            kind=ConsultationKind.VIDEO,
                            status=ConsultationStatus.ACTIVE,
                            advisor_id=staff.id,
                            requested_at=now - timedelta(minutes=5),
                            queued_at=now - timedelta(minutes=5),
                            accepted_at=now - timedelta(minutes=4),
                            passed_over=[],
                            skills=[],
                        )
                    )
            for i in range(sizes.supervisors):
                staff = Staff(
                    id=uuid.uuid4(),
                    email=f"supervisor-{i}@bench.test",
                    password_hash=password_hash,
                    role=Role.SUPERVISOR,
                    display_name=f"Supervisor {i}",
                )
                session.add(staff)
                await session.flush()
                row, cookie = session_for(staff.id)
                session.add(row)
                supervisor_cookies.append(cookie)
            for i in range(sizes.shoppers):
                shopper = Shopper(id=uuid.uuid4(), display_name=f"Shopper {i}")
                session.add(shopper)
                shopper_ids.append(str(shopper.id))
                shopper_tokens.append(
                    tokens.issue(VisitorClaims(shopper_id=shopper.id, visitor_id=f"bench{i}"))
                )
    finally:
        await db.dispose()
    return Floor(advisor_ids, advisor_cookies, supervisor_cookies, shopper_tokens, shopper_ids)


Key = tuple[str, str]


@dataclass
class Watch:
    """Each change is keyed by whom it is about and the state it leads to, e.g. (advisor, "away").
    Events about one advisor or shopper reach a supervisor in order, so the k-th receipt of a
    key at a supervisor answers the k-th send of that key."""

    supervisors: int
    sent: dict[Key, list[float]] = field(default_factory=dict)
    received: dict[tuple[int, Key], list[float]] = field(default_factory=dict)

    def send(self, key: Key) -> float:
        at = time.perf_counter()
        self.sent.setdefault(key, []).append(at)
        return at

    def unsend(self, key: Key, at: float) -> None:
        """The change was refused: no event will come for it."""
        self.sent[key].remove(at)

    def handler(self, supervisor: int) -> Any:
        def on_event(name: str, data: Any) -> None:
            now = time.perf_counter()
            if name == "presence.changed":
                key = (data["staff_id"], data["status"])
            elif name == "consultation.updated":
                key = (data["shopper_id"], data["status"])
            else:
                return
            self.received.setdefault((supervisor, key), []).append(now)

        return on_event

    @property
    def changes(self) -> int:
        return sum(len(times) for times in self.sent.values())

    def latencies(self, statuses: frozenset[str] | None = None) -> list[float]:
        samples: list[float] = []
        for key, times in self.sent.items():
            if statuses is not None and key[1] not in statuses:
                continue
            for supervisor in range(self.supervisors):
                got = self.received.get((supervisor, key), [])
                samples += [got[k] - at for k, at in enumerate(times) if k < len(got)]
        return samples

    def complete(self) -> bool:
        return all(
            len(self.received.get((supervisor, key), [])) >= len(times)
            for key, times in self.sent.items()
            for supervisor in range(self.supervisors)
        )


async def wait_until(predicate: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def run(sizes: Sizes, redis_url: str | None, keep: Path | None) -> dict[str, Any]:
    limit = raise_open_files_limit()
    say(f"mode {sizes.mode}; {ADVISORS} advisors, {LIVE_CALLS} live calls, {sizes.supervisors} supervisors")
    started = time.monotonic()
    result: dict[str, Any] = {
        "mode": sizes.mode,
        "cpus": os.cpu_count(),
        "open_files_limit": limit,
        "advisors": ADVISORS,
        "live_calls": LIVE_CALLS,
        "supervisors": sizes.supervisors,
        "processes": 2 if redis_url else 1,
        # These machines are shared: the load says how much of them the bench had.
        "load_average_1m_before": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory(prefix="livedesk-bench-") as tmp:
        workdir = keep or Path(tmp)
        os.makedirs(workdir, exist_ok=True)
        secret = secrets.token_urlsafe(32)
        url = await fresh_database(workdir / "db")
        floor = await seed_floor(url, secret, sizes)
        extra = {"LIVEDESK_QUEUE_RATE_LIMIT": "100000/minute"}
        if redis_url:
            extra |= {"LIVEDESK_REDIS_URL": redis_url, "LIVEDESK_REDIS_CHANNEL": f"bench-{uuid.uuid4().hex}"}
        servers = [start_livedesk("livedesk-a", workdir, url, secret, **extra)]
        if redis_url:
            os.makedirs(workdir / "b", exist_ok=True)
            servers.append(start_livedesk("livedesk-b", workdir / "b", url, secret, **extra))
        try:
            await asyncio.gather(*(s.wait_ready("/readyz") for s in servers))
            result |= await measure(servers, floor, sizes)
        finally:
            for server in servers:
                server.stop()
    result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


async def measure(servers: list[ServerProcess], floor: Floor, sizes: Sizes) -> dict[str, Any]:
    floor_server, board_server = servers[0], servers[-1]
    watch = Watch(sizes.supervisors)
    # No connection limit: each socket holds one connection for the whole run.
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    sockets: list[RawSocket] = []
    try:

        def open_advisor(i: int) -> Any:
            return RawSocket.open(
                http,
                floor_server.url,
                "/staff",
                headers={"Cookie": f"livedesk_session={floor.advisor_cookies[i]}"},
            )

        # A few at a time: each connect is a write transaction (presence) on SQLite.
        advisors = await open_many(ADVISORS, open_advisor, concurrency=4, progress="advisor sockets")
        sockets += advisors

        def open_supervisor(i: int) -> Any:
            return RawSocket.open(
                http,
                board_server.url,
                "/staff",
                headers={"Cookie": f"livedesk_session={floor.supervisor_cookies[i]}"},
                on_event=watch.handler(i),
            )

        supervisors = await open_many(sizes.supervisors, open_supervisor, concurrency=2)
        sockets += supervisors

        def open_shopper(i: int) -> Any:
            return RawSocket.open(http, floor_server.url, "/shopper", auth={"token": floor.shopper_tokens[i]})

        shoppers = [await open_shopper(i) for i in range(sizes.shoppers)]
        sockets += shoppers
        if len(advisors) < ADVISORS or len(supervisors) < sizes.supervisors:
            raise RuntimeError("could not open every socket")

        # 1. The snapshot with the whole floor on it.
        first = await supervisors[0].ok("board.snapshot", {})
        busy = sum(1 for a in first["advisors"] if a["status"] == "busy")
        calls = sum(1 for c in first["consultations"] if c["status"] == "active")
        say(f"snapshot: {len(first['advisors'])} advisors ({busy} busy), {calls} live calls")
        snapshot_times: list[float] = []
        figures_times: list[float] = []

        async def snapshots(sock: RawSocket) -> None:
            for _ in range(sizes.snapshots_each):
                t0 = time.perf_counter()
                await sock.ok("board.snapshot", {}, within=30)
                snapshot_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await sock.ok("board.figures", {}, within=30)
                figures_times.append(time.perf_counter() - t0)

        await asyncio.gather(*(snapshots(s) for s in supervisors))
        p50, p99 = ms(percentile(snapshot_times, 50)), ms(percentile(snapshot_times, 99))
        say(f"snapshot p50 {p50} ms, p99 {p99} ms")

        # 2. Board changes in an open loop.
        free = list(range(LIVE_CALLS, ADVISORS))  # advisors not in a call
        status = dict.fromkeys(free, "available")
        total = int(sizes.change_rate * sizes.change_seconds)
        interval = 1.0 / sizes.change_rate
        pending: list[asyncio.Task[Any]] = []
        queue_changes = 0
        cpu_before = [cpu_seconds(s.pid) for s in servers]
        loop_start = time.perf_counter()

        async def presence_change(n: int) -> None:
            i = free[n % len(free)]
            status[i] = "away" if status[i] == "available" else "available"
            key = (floor.advisor_ids[i], status[i])
            at = watch.send(key)
            try:
                await advisors[i].ok("presence.set", {"status": status[i]}, within=30)
            except Exception:
                watch.unsend(key, at)
                raise

        async def queue_change(n: int) -> None:
            index = n % len(shoppers)
            sock, shopper_id = shoppers[index], floor.shopper_ids[index]
            joined_key = (shopper_id, "queued")
            at = watch.send(joined_key)
            try:
                joined = await sock.ok("queue.join", {"kind": "chat"}, within=30)
            except Exception:
                watch.unsend(joined_key, at)
                raise
            left_key = (shopper_id, "abandoned")
            at = watch.send(left_key)
            ack = await sock.call("queue.leave", {"consultation_id": joined["id"]}, within=30)
            if not ack.get("ok"):
                watch.unsend(left_key, at)

        busy_shoppers: set[int] = set()
        for n in range(total):
            target = loop_start + n * interval
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # Every fifth change is a shopper joining and leaving the queue (two changes).
            slot = n // 5
            if n % 5 == 4 and slot % len(shoppers) not in busy_shoppers and len(shoppers) > 0:
                index = slot % len(shoppers)
                busy_shoppers.add(index)
                task = asyncio.create_task(queue_change(slot))
                task.add_done_callback(lambda _t, index=index: busy_shoppers.discard(index))
                queue_changes += 1
            else:
                task = asyncio.create_task(presence_change(n))
            pending.append(task)
        results = await asyncio.gather(*pending, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            say(f"{len(errors)} changes failed, first: {errors[0]!r}")
        # Wait for the last deliveries (or give up on them after a deadline).
        expected = sizes.supervisors
        await wait_until(watch.complete, within=15)
        elapsed = time.perf_counter() - loop_start
        cpu_after = [cpu_seconds(s.pid) for s in servers]
        samples = watch.latencies()
        presence_samples = watch.latencies(frozenset({"available", "away"}))
        queue_samples = watch.latencies(frozenset({"queued", "abandoned"}))
        wanted = watch.changes * expected
        say(f"changes: {watch.changes} made, {len(samples)}/{wanted} deliveries to supervisors")

        # 3. A Prometheus scrape with the floor in place.
        scrape_times: list[float] = []
        for _ in range(10):
            t0 = time.perf_counter()
            async with http.get(board_server.url + "/metrics") as response:
                body = await response.text()
                if response.status != 200:
                    raise RuntimeError(f"/metrics answered {response.status}: {body[:200]}")
            scrape_times.append(time.perf_counter() - t0)
    finally:
        await close_all(sockets)
        await http.close()

    changes = watch.changes
    cpu_ms = sum(a - b for a, b in zip(cpu_after, cpu_before, strict=True)) * 1000
    return {
        "board_snapshot_p50_ms": ms(percentile(snapshot_times, 50)),
        "board_snapshot_p99_ms": ms(percentile(snapshot_times, 99)),
        "board_figures_p50_ms": ms(percentile(figures_times, 50)),
        "board_figures_p99_ms": ms(percentile(figures_times, 99)),
        "board_changes": changes,
        "board_changes_per_s": round(changes / elapsed, 1),
        "board_queue_cycles": queue_changes,
        "board_deliveries": len(samples),
        "board_deliveries_expected": changes * expected,
        "board_update_p50_ms": ms(percentile(samples, 50)),
        "board_update_p90_ms": ms(percentile(samples, 90)),
        "board_update_p99_ms": ms(percentile(samples, 99)),
        "board_update_max_ms": ms(max(samples)) if samples else None,
        "board_update_presence_p99_ms": ms(percentile(presence_samples, 99)),
        "board_update_queue_p99_ms": ms(percentile(queue_samples, 99)),
        "server_cpu_ms_per_change": round(cpu_ms / changes, 2) if changes else None,
        "metrics_scrape_p50_ms": ms(percentile(scrape_times, 50)),
        "budget_board_update_ms": 250,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller numbers; finishes within a minute")
    parser.add_argument(
        "--redis", metavar="URL", help="two processes sharing Redis (supervisors on the second)"
    )
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the database and server logs in DIR")
    args = parser.parse_args()
    result = asyncio.run(run(QUICK if args.quick else FULL, args.redis, args.keep))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.exit(main())
