"""Routing at scale: 500 advisors and 1,000 queued shoppers (issue 22, item 4).

Measured in one process against the real database (SQLite, or PostgreSQL with
``--database-url``), through the code the app runs (consultations/dispatch.py and
queue.positions), with the old design's full pass (one global lock, every advisor, the 200
oldest queued, every queue place: what each process ran every second) as the baseline of the
same run:

- ``advisor_frees``: every advisor in a call, 1,000 waiting; one call ends (committed), then
  the decision for that advisor: latency from the change's commit to the offer's commit,
  and CPU per decision.
- ``shopper_joins``: 100 advisors free, 1,000 waiting for their own (busy) nominee; a new
  shopper joins (committed), then the decision for that consultation.
- ``concurrent``: the ``advisor_frees`` decisions from two pools at once (two processes as
  far as the database can tell): double offers counted (must be 0).
- ``places``: one recompute of every queue place (after a change, in the background).
- ``idle``: CPU per second of a process with nothing changing: the old pass every second
  vs. the sweep every ``routing_sweep_seconds`` (in the one process holding its claim).

    PYTHONPATH=src python bench/routing.py [--database-url postgresql+asyncpg://...] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import insert, select, text, update

from _realtime_seed import fresh_database
from livedesk.consultations import dispatch, queue, routing
from livedesk.consultations.place_book import LocalBook, PlaceBook, RedisBook, told
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database, Outgoing
from livedesk.models import (
    AdvisorPresence,
    AppProcess,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    PresenceStatus,
    Role,
    Shopper,
    ShopperConnection,
    Staff,
    StaffConnection,
)
from livedesk.settings import Settings

S = ConsultationStatus
HERE = Path(__file__).resolve().parent


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_pct(values, 0.5) * 1000, 2),
        "p99_ms": round(_pct(values, 0.99) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2),
    }


async def _discard(_outgoing: Outgoing) -> None:
    return None


# --- the old design's pass, kept here as the baseline ------------------------------------


async def _old_candidates(session: Any) -> list[routing.Candidate]:
    rows = (
        await session.execute(
            select(Staff, AdvisorPresence)
            .join(AdvisorPresence, AdvisorPresence.staff_id == Staff.id)
            .where(
                AdvisorPresence.status == PresenceStatus.AVAILABLE,
                Staff.active.is_(True),
                Staff.role == Role.ADVISOR,
            )
        )
    ).all()
    if not rows:
        return []
    ids = [staff.id for staff, _ in rows]
    load = (
        await session.execute(
            select(
                Consultation.advisor_id, Consultation.offered_to_id, Consultation.kind, Consultation.status
            ).where(
                Consultation.status.in_((S.ACTIVE, S.OFFERED)),
                (Consultation.advisor_id.in_(ids)) | (Consultation.offered_to_id.in_(ids)),
            )
        )
    ).all()
    chats: dict[uuid.UUID, int] = {}
    calls: set[uuid.UUID] = set()
    offers: set[uuid.UUID] = set()
    for advisor_id, offered_to_id, kind, status in load:
        if status == S.OFFERED and offered_to_id is not None:
            offers.add(offered_to_id)
        elif status == S.ACTIVE and advisor_id is not None:
            if kind == ConsultationKind.CHAT:
                chats[advisor_id] = chats.get(advisor_id, 0) + 1
            else:
                calls.add(advisor_id)
    return [
        routing.Candidate(
            staff_id=staff.id,
            skills=frozenset(staff.skills),
            languages=frozenset(staff.languages),
            idle_since=state.idle_since,
            chats=chats.get(staff.id, 0),
            in_call=staff.id in calls,
            has_pending_offer=staff.id in offers,
            team_id=staff.team_id,
        )
        for staff, state in rows
    ]


async def old_pass(db: Database, settings: Settings) -> None:
    """What every process ran every second before: the global lock, due offers, stale waits,
    every available advisor and the 200 oldest queued, then every queue place."""
    async with db.transaction() as session:
        if not db.is_sqlite:
            await session.execute(text("SELECT pg_advisory_xact_lock(727001)"))
        now = utcnow()
        await session.scalars(
            select(Consultation).where(Consultation.status == S.OFFERED, Consultation.offer_expires_at < now)
        )
        cutoff = now - timedelta(seconds=settings.queue_max_wait_seconds)
        await session.scalars(
            select(Consultation).where(Consultation.status == S.QUEUED, Consultation.queued_at < cutoff)
        )
        waiting = (
            await session.scalars(
                select(Consultation)
                .where(Consultation.status == S.QUEUED)
                .order_by(Consultation.queued_at)
                .limit(200)
            )
        ).all()
        candidates = await _old_candidates(session)
        for c in waiting:
            routing.choose_advisor(dispatch._request(c), candidates, settings.max_chats_per_advisor)
        await queue.positions(session, settings)


# --- seeding ---------------------------------------------------------------------------------


async def seed(db: Database, advisors: int, waiting: int) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """``advisors`` available advisors each in a video call; ``waiting`` queued shoppers with
    a page open. Returns (advisor ids, their calls' consultation ids)."""
    now = utcnow()
    staff = [uuid.uuid4() for _ in range(advisors)]
    shoppers = [uuid.uuid4() for _ in range(advisors + waiting)]
    calls = [uuid.uuid4() for _ in range(advisors)]
    async with db.transaction() as session:
        await session.execute(
            insert(Staff),
            [
                {
                    "id": s,
                    "email": f"a{n}@bench.test",
                    "password_hash": "x",
                    "role": Role.ADVISOR,
                    "display_name": f"advisor {n}",
                    "skills": ["styling"] if n % 2 else ["skincare"],
                    "languages": ["ja", "en"] if n % 3 else ["ja"],
                }
                for n, s in enumerate(staff)
            ],
        )
        await session.execute(
            insert(AdvisorPresence),
            [
                {
                    "staff_id": s,
                    "chosen": PresenceStatus.AVAILABLE,
                    # In a call: busy, as presence.recompute keeps it.
                    "status": PresenceStatus.BUSY,
                    "idle_since": now - timedelta(seconds=n),
                }
                for n, s in enumerate(staff)
            ],
        )
        # Every page and console held by a process that beats (far ahead), so no process sweep
        # or attendance check changes anything while an idle server is measured.
        await session.execute(insert(AppProcess), [{"id": "bench", "heartbeat_at": now + timedelta(days=1)}])
        await session.execute(
            insert(StaffConnection),
            [{"sid": uuid.uuid4().hex, "staff_id": s, "process_id": "bench"} for s in staff],
        )
        await session.execute(insert(Shopper), [{"id": s, "display_name": "s"} for s in shoppers])
        await session.execute(
            insert(ShopperConnection),
            [{"sid": uuid.uuid4().hex, "shopper_id": s, "process_id": "bench"} for s in shoppers],
        )
        await session.execute(
            insert(Consultation),
            [
                {
                    "id": calls[n],
                    "shopper_id": shoppers[n],
                    "kind": ConsultationKind.VIDEO,
                    "status": S.ACTIVE,
                    "advisor_id": s,
                    "requested_at": now - timedelta(minutes=10),
                    "queued_at": now - timedelta(minutes=10),
                    "accepted_at": now - timedelta(minutes=5),
                    "skills": [],
                    "passed_over": [],
                    "extra": {},
                }
                for n, s in enumerate(staff)
            ],
        )
        if not waiting:
            return staff, calls
        await session.execute(
            insert(Consultation),
            [
                {
                    "shopper_id": shoppers[advisors + n],
                    "kind": (ConsultationKind.CHAT, ConsultationKind.VIDEO)[n % 2],
                    "status": S.QUEUED,
                    "requested_at": now - timedelta(seconds=waiting - n),
                    "queued_at": now - timedelta(seconds=waiting - n),
                    "skills": ["styling"] if n % 3 == 0 else [],
                    "language": "en" if n % 4 == 0 else None,
                    "passed_over": [],
                    "extra": {},
                }
                for n in range(waiting)
            ],
        )
    return staff, calls


async def _free(db: Database, call: uuid.UUID) -> None:
    """The change: a call ends and its advisor is available again (committed)."""
    async with db.transaction() as session:
        advisor = await session.scalar(select(Consultation.advisor_id).where(Consultation.id == call))
        await session.execute(
            update(Consultation).where(Consultation.id == call).values(status=S.CLOSED, ended_at=utcnow())
        )
        await session.execute(
            update(AdvisorPresence)
            .where(AdvisorPresence.staff_id == advisor)
            .values(status=PresenceStatus.AVAILABLE, idle_since=utcnow())
        )


async def advisor_frees(
    db: Database, settings: Settings, staff: list[uuid.UUID], calls: list[uuid.UUID]
) -> Any:
    latencies, cpus = [], []
    for advisor, call in zip(staff, calls, strict=True):
        await _free(db, call)
        wall, cpu = time.perf_counter(), time.process_time()
        async with db.transaction() as session:
            made = await dispatch.decide(session, settings, advisor_id=advisor)
        latencies.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        assert [o.advisor_id for o in made] == [advisor], made
    return {
        "decisions": len(latencies),
        **_ms(latencies),
        "cpu_ms_per_decision": round(statistics.mean(cpus) * 1000, 2),
    }


async def concurrent(url: str, settings: Settings, staff: list[uuid.UUID], calls: list[uuid.UUID]) -> Any:
    pools = [Database(url), Database(url)]
    for pool in pools:
        pool.event_sink = _discard
    latencies: list[float] = []
    made: list[dispatch.Offer] = []

    async def one(pool: Database, advisor: uuid.UUID, call: uuid.UUID) -> None:
        await _free(pool, call)
        wall = time.perf_counter()
        async with pool.transaction() as session:
            made.extend(await dispatch.decide(session, settings, advisor_id=advisor))
        latencies.append(time.perf_counter() - wall)

    wall, cpu = time.perf_counter(), time.process_time()
    try:
        for start in range(0, len(staff), 2):
            pairs = list(zip(staff[start : start + 2], calls[start : start + 2], strict=True))
            await asyncio.gather(*(one(pools[n % 2], a, c) for n, (a, c) in enumerate(pairs)))
    finally:
        for pool in pools:
            await pool.dispose()
    elapsed, cpu = time.perf_counter() - wall, time.process_time() - cpu
    offered = [o.consultation_id for o in made]
    advisors = [o.advisor_id for o in made]
    return {
        "decisions": len(made),
        **_ms(latencies),
        "cpu_ms_per_decision": round(cpu / max(1, len(made)) * 1000, 2),
        "decisions_per_s": round(len(made) / elapsed, 1),
        "double_offers": len(offered) - len(set(offered)),
        "advisors_with_two_offers": len(advisors) - len(set(advisors)),
    }


async def shopper_joins(
    db: Database, settings: Settings, staff: list[uuid.UUID], calls: list[uuid.UUID], free: int
) -> Any:
    """Free ``free`` advisors; everyone waiting waits for a busy nominee, so nothing is
    decided until a new shopper joins."""
    busy = staff[free:]
    async with db.transaction() as session:
        ids = (await session.scalars(select(Consultation.id).where(Consultation.status == S.QUEUED))).all()
        for n, cid in enumerate(ids):
            await session.execute(
                update(Consultation)
                .where(Consultation.id == cid)
                .values(nominated_advisor_id=busy[n % len(busy)], wait_for_nominated=True)
            )
        await session.execute(
            update(Consultation).where(Consultation.id.in_(calls[:free])).values(status=S.CLOSED)
        )
        await session.execute(
            update(AdvisorPresence)
            .where(AdvisorPresence.staff_id.in_(staff[:free]))
            .values(status=PresenceStatus.AVAILABLE)
        )
    latencies, cpus = [], []
    for n in range(free):
        shopper = uuid.uuid4()
        async with db.transaction() as session:
            session.add(Shopper(id=shopper, display_name="new"))
            await session.flush()
            c = Consultation(
                shopper_id=shopper,
                kind=ConsultationKind.VIDEO,
                status=S.QUEUED,
                queued_at=utcnow(),
                skills=["skincare"] if n % 2 else [],
                language="ja",
                passed_over=[],
                extra={},
            )
            session.add(c)
        wall, cpu = time.perf_counter(), time.process_time()
        async with db.transaction() as session:
            made = await dispatch.decide(session, settings, consultation_id=c.id)
        latencies.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        assert len(made) == 1, made
    return {
        "decisions": len(latencies),
        **_ms(latencies),
        "cpu_ms_per_decision": round(statistics.mean(cpus) * 1000, 2),
    }


async def _timed(work: Any, runs: int) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        await work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {**_ms(walls), "cpu_ms": round(statistics.mean(cpus) * 1000, 2)}


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="", help="PostgreSQL (a database of the bench's own)")
    parser.add_argument("--advisors", type=int, default=500)
    parser.add_argument("--waiting", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="fewer decisions, shorter idle windows")
    parser.add_argument("--redis-url", default="", help="keep the places last told in Redis (as replicas do)")
    parser.add_argument(
        "--baseline-src",
        default="",
        help="a checkout's src/ with the old routing pass (e.g. the main branch): its idle server is "
        "measured beside this one's",
    )
    args = parser.parse_args()
    decisions = 60 if args.quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        url = await fresh_database(Path(tmp), args.database_url)
        db = Database(url)
        db.event_sink = _discard
        settings = Settings(database_url=url, data_dir=Path(tmp), secret_key="bench-" + uuid.uuid4().hex)
        try:
            staff, calls = await seed(db, args.advisors, args.waiting)
            sweep_settings = settings.routing_sweep_seconds
            results: dict[str, Any] = {
                "backend": "postgresql" if not db.is_sqlite else "sqlite",
                "advisors": args.advisors,
                "waiting": args.waiting,
            }
            # Baseline: the old full pass (every process, every second).
            results["baseline_old_pass"] = await _timed(lambda: old_pass(db, settings), 10)
            results["places_recompute"] = await _timed(lambda: _positions(db, settings), 5)
            results["advisor_frees"] = await advisor_frees(db, settings, staff[:decisions], calls[:decisions])
            results["concurrent"] = await concurrent(
                url, settings, staff[decisions : 2 * decisions], calls[decisions : 2 * decisions]
            )
            # Everyone still in a call stays; offers made above are answered (accepted: calls).
            async with db.transaction() as session:
                await session.execute(
                    update(Consultation)
                    .where(Consultation.status == S.OFFERED)
                    .values(status=S.ACTIVE, advisor_id=Consultation.offered_to_id, offered_to_id=None)
                )
                await session.execute(
                    update(AdvisorPresence)
                    .where(AdvisorPresence.staff_id.in_(staff[: 2 * decisions]))
                    .values(status=PresenceStatus.BUSY)
                )
            rest_staff, rest_calls = staff[2 * decisions :], calls[2 * decisions :]
            results["shopper_joins"] = await shopper_joins(
                db, settings, rest_staff, rest_calls, min(100, len(rest_staff) // 2)
            )
            sweep = await _timed(lambda: _sweep(db, settings), 5)
            old = results["baseline_old_pass"]["cpu_ms"]
            results["idle_cpu_ms_per_s"] = {
                "old_every_process": old,
                "new_sweep_holder": round(sweep["cpu_ms"] / sweep_settings, 2),
                "new_other_processes": 0.0,
                "sweep_cpu_ms": sweep["cpu_ms"],
                "routing_sweep_seconds": sweep_settings,
            }
            results["ratios"] = {
                "old_pass_cpu_over_decision_cpu": round(
                    old / max(results["advisor_frees"]["cpu_ms_per_decision"], 1e-6), 1
                ),
            }
            results["places_events"] = await places_events(db, settings, args.redis_url)
            window = 10.0 if args.quick else 30.0
            results["idle_server"] = await idle_servers(Path(tmp), args, window)
            results["loadavg"] = os.getloadavg()
            print(json.dumps(results))
        finally:
            await db.dispose()


async def places_events(db: Database, settings: Settings, redis_url: str) -> dict[str, Any]:
    """How many shoppers are told a new place after each kind of change (the recompute
    diffed against the places last told: a Redis hash with ``--redis-url``)."""
    from redis import asyncio as aioredis

    redis = aioredis.Redis.from_url(redis_url) if redis_url else None
    book: PlaceBook = LocalBook()
    if redis is not None:
        key = f"bench-routing-{uuid.uuid4().hex}:queue-places"
        book = RedisBook(redis, key)
    out: dict[str, Any] = {"book": "redis" if redis else "local"}

    async def sent() -> int:
        async with db.read() as session:
            places = await queue.positions(session, settings)
        values = {str(p.consultation_id): told(p) for _, p in places}
        return len(await book.changed(values))

    try:
        wall, cpu = time.perf_counter(), time.process_time()
        out["first_recompute"] = await sent()
        out["recompute_ms"] = round((time.perf_counter() - wall) * 1000, 1)
        out["recompute_cpu_ms"] = round((time.process_time() - cpu) * 1000, 1)
        out["no_change"] = await sent()
        shopper = uuid.uuid4()
        async with db.transaction() as session:
            session.add(Shopper(id=shopper, display_name="late"))
            await session.flush()
            session.add(ShopperConnection(sid=uuid.uuid4().hex, shopper_id=shopper, process_id="bench"))
            session.add(
                Consultation(
                    shopper_id=shopper,
                    kind=ConsultationKind.CHAT,
                    status=S.QUEUED,
                    queued_at=utcnow(),
                    skills=[],
                    passed_over=[],
                    extra={},
                )
            )
        out["join_at_the_back"] = await sent()
        async with db.transaction() as session:
            head = await session.scalar(
                select(Consultation.id)
                .where(Consultation.status == S.QUEUED)
                .order_by(Consultation.queued_at)
                .limit(1)
            )
            await session.execute(
                update(Consultation).where(Consultation.id == head).values(status=S.ABANDONED)
            )
        out["head_leaves"] = await sent()
    finally:
        if redis is not None:
            await redis.delete(key)
            await redis.aclose()
    return out


async def idle_servers(tmp: Path, args: argparse.Namespace, window: float) -> dict[str, Any]:
    """A real ``livedesk serve`` left idle with the seeded queue (nothing changes): its CPU
    per second, this checkout's and (``--baseline-src``) the old one's, one after the other."""
    out: dict[str, Any] = {"window_s": window}
    # "floor": this checkout with the same advisors and calls but nobody waiting: what every
    # other periodic job costs (the watchers of 500 calls, heartbeats...), not routing.
    runs = [("floor", str(HERE.parent / "src"), 0), ("new", str(HERE.parent / "src"), args.waiting)]
    if args.baseline_src:
        runs.insert(0, ("old", args.baseline_src, args.waiting))
    for name, src, waiting in runs:
        url = await fresh_database(tmp / f"idle-{name}", args.database_url)
        if src != str(HERE.parent / "src"):
            # The baseline checkout may have migrations of its own on top: apply them with it.
            await asyncio.to_thread(_upgrade_with, src, url)
        db = Database(url)
        try:
            await seed(db, args.advisors, waiting)
        finally:
            await db.dispose()
        try:
            out[f"{name}_cpu_ms_per_s"] = await _idle_cpu(
                url, src, tmp / f"idle-{name}", args.redis_url, window
            )
        except RuntimeError as exc:  # reported, not fatal: the other figures stand
            out[f"{name}_error"] = str(exc)[-500:]
    if "new_cpu_ms_per_s" in out and "floor_cpu_ms_per_s" in out:
        out["new_routing_share_ms_per_s"] = round(out["new_cpu_ms_per_s"] - out["floor_cpu_ms_per_s"], 2)
    if "old_cpu_ms_per_s" in out and "floor_cpu_ms_per_s" in out:
        out["old_routing_share_ms_per_s"] = round(out["old_cpu_ms_per_s"] - out["floor_cpu_ms_per_s"], 2)
        out["ratio_old_over_new"] = round(out["old_cpu_ms_per_s"] / max(out["new_cpu_ms_per_s"], 1e-6), 1)
    return out


async def _idle_cpu(url: str, src: str, data: Path, redis_url: str, window: float) -> float:
    import socket
    import subprocess

    import aiohttp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update(
        {
            "PYTHONPATH": src,
            "LIVEDESK_HOST": "127.0.0.1",
            "LIVEDESK_PORT": str(port),
            "LIVEDESK_DATA_DIR": str(data / "data"),
            "LIVEDESK_DATABASE_URL": url,
            "LIVEDESK_SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "LIVEDESK_LOG_LEVEL": "warning",
            "LIVEDESK_REDIS_URL": redis_url,
            "LIVEDESK_REDIS_CHANNEL": f"bench-routing-{uuid.uuid4().hex}",
        }
    )
    with (data / "server.log").open("wb") as log:
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, stopped by its handle below
            [sys.executable, "-m", "livedesk", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 300
        async with aiohttp.ClientSession() as http:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited: {(data / 'server.log').read_text()[-2000:]}")
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if loop.time() > deadline:
                    raise RuntimeError(f"server not ready: {(data / 'server.log').read_text()[-500:]}")
                await asyncio.sleep(0.1)
        await asyncio.sleep(3)  # start-up work (migrations checked, caches) out of the window
        before = _cpu_seconds(proc.pid)
        await asyncio.sleep(window)
        used = _cpu_seconds(proc.pid) - before
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return round(used / window * 1000, 2)


def _upgrade_with(src: str, url: str) -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update({"PYTHONPATH": src, "LIVEDESK_DATABASE_URL": url, "LIVEDESK_LOG_LEVEL": "warning"})
    subprocess.run([sys.executable, "-m", "livedesk", "db", "upgrade"], env=env, check=True, timeout=300)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _positions(db: Database, settings: Settings) -> None:
    async with db.read() as session:
        await queue.positions(session, settings)


async def _sweep(db: Database, settings: Settings) -> None:
    """What the sweep does with nothing lost: due offers, stale waits, a general decision,
    every queue place."""
    async with db.read() as session:
        await dispatch.due_offers(session)
    async with db.transaction() as session:
        await dispatch.give_up_stale(session, settings)
    async with db.transaction() as session:
        await dispatch.decide(session, settings)
    await _positions(db, settings)


if __name__ == "__main__":
    os.environ.setdefault("LIVEDESK_LOG_LEVEL", "warning")
    asyncio.run(main())
