"""Real-time benchmarks against the budgets in ARCHITECTURE §9 (docs/architecture.md §5).

    python bench/realtime.py [--quick] [--database-url URL] [--redis-url URL] [--processes N]

Three measurements, each on its own fresh ``livedesk serve`` subprocesses — by default one, on
SQLite in a temp directory, no Redis; ``--database-url`` (PostgreSQL, a database of its own,
emptied first), ``--redis-url`` and ``--processes N`` give the production shape, where the
shopper and the advisor of a consultation connect to different processes — all on 127.0.0.1:

1. chat.send → ack round trip: one active consultation reached through the real path
   (visitor, staff login, queue.join, offer.new, offer.accept); the shopper sends N messages
   one after the other, awaiting each ack. The baseline is a bare python-socketio
   ``AsyncServer`` on aiohttp (same ``async_handlers=False`` as livedesk) whose handler
   returns the payload; same client, same N, measured in alternating blocks in the same run.
2. Idle connections: many shopper sockets (Engine.IO v4 websocket + Socket.IO CONNECT with
   a visitor token) held open on one process; the server's RSS before and after.
3. Chat fan-out: M active consultations = 2·M connected clients (a shopper and an advisor
   each). First a closed loop (a few consultations keep one send in flight each) measures
   the most one process stores and delivers, and its CPU per message. Then open loops at
   rising fixed rates, alternating shopper and advisor, each message a real ``chat.send``
   (stored, sequenced, emitted to both parties); delivery latency is send → the *other*
   party's ``chat.message``. The ladder stops at the budget's rate or once the server
   falls behind.

Progress goes to stdout as ``[bench] …`` lines; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from _common import (
    RawSocket,
    close_all,
    cpu_seconds,
    free_port,
    open_many,
    percentile,
    place,
    raise_open_files_limit,
    say,
    settled_rss_kib,
    split_cpus,
    start_process,
)
from _realtime_seed import (
    PASSWORD,
    Shape,
    fresh_database,
    make_advisor,
    seed_pairs,
    seed_shoppers,
    serve_echo,
    start_cluster,
)

ECHO_SCRIPT = str(Path(__file__).resolve())


@dataclass(frozen=True)
class Sizes:
    mode: str
    ack_n: int
    ack_warmup: int
    idle_connections: int
    fanout_pairs: int
    fanout_rates: tuple[int, ...]
    fanout_seconds: float
    drain_seconds: float
    capacity_seconds: float


FULL = Sizes("full", 1000, 100, 10_000, 1000, (100, 250, 500, 1000), 5.0, 30.0, 5.0)
QUICK = Sizes("quick", 200, 30, 1000, 100, (50, 100), 3.0, 10.0, 2.0)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


# --------------------------------------------------------------------------- 1. ack round trip

# Where the servers and the bench's client run while the round trip is timed. "split": the
# server under test on one half of the cores and the client on the other, as in production,
# where the shopper's browser is on another machine — this is the budget's figure. "shared":
# anywhere, as the kernel likes; on a loopback socket it then tends to run the woken client on
# the server's core, so whatever the server does after its ack (livedesk delivers the message
# to the advisor's socket; the echo does nothing) is counted in the client's next round trip.
# Both are reported.
_SPLIT = split_cpus()
PLACEMENTS: dict[str, tuple[set[int] | None, set[int] | None]] = (
    {"split": _SPLIT, "shared": (None, None)} if _SPLIT else {"split": (None, None)}
)


async def timed_sends(sock: RawSocket, consultation_id: str, n: int, tag: str) -> list[float]:
    times: list[float] = []
    for i in range(n):
        payload = {"consultation_id": consultation_id, "client_id": f"{tag}-{i:06d}", "body": f"message {i}"}
        started = time.perf_counter()
        ack = await sock.call("chat.send", payload)
        times.append(time.perf_counter() - started)
        if not ack.get("ok"):
            raise RuntimeError(f"chat.send failed: {ack}")
    return times


async def bench_ack(workdir: Path, sizes: Sizes, shape: Shape) -> dict[str, Any]:
    say(f"ack round trip: livedesk vs bare python-socketio echo, N={sizes.ack_n}")
    secret = secrets.token_urlsafe(32)
    url = await fresh_database(workdir / "ack", shape.database_url)
    email = await make_advisor(url)
    apps = start_cluster("livedesk-ack", workdir / "ack", url, secret, shape)
    # The shopper on the first process, the advisor on the last (another one when there are two).
    app, advisor_app = apps[0], apps[-1]
    echo_port = free_port()
    echo = start_process(
        "echo",
        [sys.executable, ECHO_SCRIPT, "--serve-echo", str(echo_port)],
        dict(os.environ),
        echo_port,
        workdir,
    )
    servers = [*apps, echo]
    sockets: list[RawSocket] = []
    try:
        await asyncio.gather(*(server.wait_ready("/readyz") for server in servers))
        async with aiohttp.ClientSession() as http:
            async with http.post(app.url + "/api/v1/visitors", json={}) as response:
                token = (await response.json())["token"]
            async with http.post(
                advisor_app.url + "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
            ) as r:
                if r.status != 200:
                    raise RuntimeError(f"login failed: {await r.text()}")
                cookie = r.cookies["livedesk_session"].value
        offers: asyncio.Queue[Any] = asyncio.Queue()

        def advisor_event(name: str, data: Any) -> None:
            if name == "offer.new":
                offers.put_nowait(data)

        ws_http = aiohttp.ClientSession()
        try:
            advisor = await RawSocket.open(
                ws_http,
                advisor_app.url,
                "/staff",
                headers={"Cookie": f"livedesk_session={cookie}"},
                on_event=advisor_event,
            )
            shopper = await RawSocket.open(ws_http, app.url, "/shopper", auth={"token": token})
            baseline = await RawSocket.open(ws_http, echo.url, "/shopper", auth={"token": "x"})
            sockets += [advisor, shopper, baseline]
            joined = await shopper.ok("queue.join", {"kind": "chat"})
            offer = await asyncio.wait_for(offers.get(), 10)
            assert offer["id"] == joined["id"]
            await advisor.ok("offer.accept", {"consultation_id": joined["id"]})
            cid = joined["id"]

            await timed_sends(shopper, cid, sizes.ack_warmup, "warm")
            await timed_sends(baseline, cid, sizes.ack_warmup, "warm")
            # Alternating blocks, so a noisy moment hurts both sides alike; each block once with
            # the servers and this client on cores of their own, once wherever the kernel puts
            # them (see PLACEMENTS).
            times: dict[tuple[str, str], list[float]] = {}
            blocks = 10
            for block in range(blocks):
                k = sizes.ack_n // blocks
                for placement, (server_cpus, client_cpus) in PLACEMENTS.items():
                    for server in servers:
                        place(server.pid, server_cpus)
                    place(0, client_cpus)
                    for side, sock in (("livedesk", shopper), ("echo", baseline)):
                        sent = await timed_sends(sock, cid, k, f"{side}-{placement}-{block}")
                        times.setdefault((placement, side), []).extend(sent)
            place(0, None)
        finally:
            await close_all(sockets)
            await ws_http.close()
    finally:
        for server in servers:
            server.stop()
    result: dict[str, Any] = {"ack_n": sizes.ack_n // blocks * blocks}
    for placement in PLACEMENTS:
        suffix = "" if placement == "split" else f"_{placement}"
        ours, echo_times = times[(placement, "livedesk")], times[(placement, "echo")]
        p50, base = percentile(ours, 50), percentile(echo_times, 50)
        result |= {
            f"ack_p50_ms{suffix}": ms(p50),
            f"ack_p99_ms{suffix}": ms(percentile(ours, 99)),
            f"baseline_ack_p50_ms{suffix}": ms(base),
            f"baseline_ack_p99_ms{suffix}": ms(percentile(echo_times, 99)),
            f"ack_ratio{suffix}": round(p50 / base, 2),
        }
        say(
            f"ack ({placement} cores): livedesk p50 {ms(p50)} ms, echo p50 {ms(base)} ms, "
            f"ratio {round(p50 / base, 2)}"
        )
    return result


# --------------------------------------------------------------------------- 2. idle connections


async def bench_idle(workdir: Path, sizes: Sizes, shape: Shape) -> dict[str, Any]:
    from livedesk.identity import VisitorClaims, VisitorTokens

    target = sizes.idle_connections
    say(f"idle connections: opening {target} shopper sockets on one process")
    secret = secrets.token_urlsafe(32)
    url = await fresh_database(workdir / "idle", shape.database_url)
    shopper_ids = await seed_shoppers(url, target + 100)
    # One process, whatever the shape: the figure is the memory per socket of a process.
    (app,) = start_cluster(
        "livedesk-idle", workdir / "idle", url, secret, Shape(shape.database_url, shape.redis_url, 1)
    )
    tokens = VisitorTokens(secret, 24 * 3600)
    warm: list[RawSocket] = []
    held: list[RawSocket] = []
    connector = aiohttp.TCPConnector(limit=0)
    http = aiohttp.ClientSession(connector=connector)
    try:
        await app.wait_ready("/readyz")

        def opener(i: int) -> Any:
            token = tokens.issue(VisitorClaims(shopper_id=shopper_ids[i], visitor_id=f"idle{i}"))
            return RawSocket.open(http, app.url, "/shopper", auth={"token": token})

        # Warm up the code paths (first connect starts the manager, lazy imports…), then
        # measure from there.
        warm = await open_many(100, lambda i: opener(target + i))
        before = await settled_rss_kib(app.pid)
        say(f"idle: server RSS {before} KiB with {len(warm)} warm-up sockets")
        started = time.monotonic()
        held = await open_many(target, opener, concurrency=100, progress="idle: connected")
        connect_seconds = time.monotonic() - started
        after = await settled_rss_kib(app.pid, within=15)
        still_open = sum(1 for s in held if s.open_now)
        # The process still serves requests with all of them open.
        async with http.get(app.url + "/healthz") as response:
            healthy = response.status == 200
        per_conn = (after - before) / still_open if still_open else float("nan")
        say(f"idle: {still_open} open, RSS {before} → {after} KiB, {per_conn:.1f} KiB each")
    finally:
        await close_all(held + warm)
        await http.close()
        app.stop()
    return {
        "idle_connections": still_open,
        "idle_target": target,
        "idle_rss_before_kib": before,
        "idle_rss_after_kib": after,
        "idle_kib_per_conn": round(per_conn, 2),
        "idle_connect_rate_per_s": round(len(held) / connect_seconds, 1) if connect_seconds else None,
        "idle_server_healthy": healthy,
    }


# --------------------------------------------------------------------------- 3. fan-out


@dataclass
class Party:
    role: str  # "shopper" or "staff" (the sender kinds of chat.message)
    sock: RawSocket | None = None


class FanoutStats:
    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}
        self.delivered_at: dict[str, float] = {}
        self.ack_errors: list[Any] = []
        self.acked = 0

    def handler(self, role: str) -> Any:
        def on_event(name: str, data: Any) -> None:
            if name != "chat.message":
                return
            now = time.perf_counter()
            # Latency is to the other party; the sender's own tab gets its copy too.
            if data["sender"] != role:
                self.delivered_at.setdefault(data["client_id"], now)

        return on_event

    def on_ack(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            self.ack_errors.append(repr(future.exception()) if not future.cancelled() else "cancelled")
            return
        ack = future.result()
        if isinstance(ack, dict) and ack.get("ok"):
            self.acked += 1
        else:
            self.ack_errors.append(ack)


async def wait_delivered(stats: FanoutStats, ids: list[str], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(i in stats.delivered_at for i in ids):
            return
        await asyncio.sleep(0.05)


async def bench_fanout(workdir: Path, sizes: Sizes, shape: Shape) -> dict[str, Any]:
    pairs_n = sizes.fanout_pairs
    say(f"fan-out: seeding {pairs_n} active consultations ({2 * pairs_n} clients)")
    secret = secrets.token_urlsafe(32)
    url = await fresh_database(workdir / "fanout", shape.database_url)
    pairs = await seed_pairs(url, secret, pairs_n)
    apps = start_cluster("livedesk-fanout", workdir / "fanout", url, secret, shape)
    n = len(apps)
    stats = FanoutStats()
    shoppers: list[RawSocket] = []
    advisors: list[RawSocket] = []
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    loop = asyncio.get_running_loop()
    try:
        await asyncio.gather(*(app.wait_ready("/readyz") for app in apps))

        # A consultation's shopper and advisor on different processes (when there are two).
        def open_shopper(i: int) -> Any:
            return RawSocket.open(
                http,
                apps[i % n].url,
                "/shopper",
                auth={"token": pairs[i].shopper_token},
                on_event=stats.handler("shopper"),
            )

        def open_advisor(i: int) -> Any:
            return RawSocket.open(
                http,
                apps[(i + 1) % n].url,
                "/staff",
                headers={"Cookie": f"livedesk_session={pairs[i].advisor_cookie}"},
                on_event=stats.handler("staff"),
            )

        shoppers = await open_many(pairs_n, open_shopper, concurrency=50, progress="fan-out: shoppers")
        advisors = await open_many(pairs_n, open_advisor, concurrency=20, progress="fan-out: advisors")
        if len(shoppers) != pairs_n or len(advisors) != pairs_n:
            raise RuntimeError("not every fan-out client could connect")
        # open_many keeps the order of the pairs.
        clients = len(shoppers) + len(advisors)
        say(f"fan-out: {clients} clients connected; warming up (one message per consultation)")

        async def send(i: int, sender: RawSocket, client_id: str) -> None:
            frame, future = sender.frame(
                "chat.send",
                {
                    "consultation_id": pairs[i].consultation_id,
                    "client_id": client_id,
                    "body": f"hi {client_id}",
                },
            )
            future.add_done_callback(stats.on_ack)
            stats.sent_at[client_id] = time.perf_counter()
            await sender.send_frame(frame)

        warm_ids = []
        for i in range(pairs_n):
            cid = f"warm-{i:08d}"
            warm_ids.append(cid)
            await send(i, shoppers[i], cid)
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        await wait_delivered(stats, warm_ids, 60)

        # Closed loop first, on a quiet server: a few consultations keep one send in flight
        # each, which is as much as one process stores and delivers.
        busy = min(pairs_n, 50)
        say(
            f"fan-out: closed loop for {sizes.capacity_seconds:.0f} s "
            f"({busy} consultations, one send in flight each)"
        )
        stop_at = loop.time() + sizes.capacity_seconds
        capacity_lat: list[float] = []

        async def chatter(i: int) -> None:
            k = 0
            while loop.time() < stop_at:
                sender = shoppers[i] if k % 2 == 0 else advisors[i]
                started = time.perf_counter()
                ack = await sender.call(
                    "chat.send",
                    {
                        "consultation_id": pairs[i].consultation_id,
                        "client_id": f"cap-{i:06d}-{k:06d}",
                        "body": "x",
                    },
                    within=60,
                )
                if not ack.get("ok"):
                    stats.ack_errors.append(ack)
                    return
                capacity_lat.append(time.perf_counter() - started)
                k += 1

        cap_started = loop.time()
        # CPU of every server process: each message is stored by one and delivered by both.
        cpu_before = sum(cpu_seconds(app.pid) for app in apps)
        await asyncio.gather(*(chatter(i) for i in range(busy)))
        cap_elapsed = loop.time() - cap_started
        capacity = round(len(capacity_lat) / cap_elapsed, 1)
        cpu_used = sum(cpu_seconds(app.pid) for app in apps) - cpu_before
        cpu_per_msg = cpu_used / max(len(capacity_lat), 1)
        say(f"fan-out: capacity {capacity} msgs/s, server CPU {cpu_per_msg * 1000:.2f} ms per message")

        # Open loop, rate by rate, until the budget's rate or until the server falls behind.
        # This client holds 2,000 sockets: its own full garbage collections stopped it for
        # 100 ms and more, which read as late deliveries. It keeps its collector off while it
        # measures (a few seconds' garbage), so what is timed is the server.
        gc.collect()
        gc.freeze()
        gc.disable()
        steps: list[dict[str, Any]] = []
        serial = 0
        for rate in sizes.fanout_rates:
            total = int(rate * sizes.fanout_seconds)
            ids: list[str] = []
            start = loop.time()
            lag = 0.0
            for k in range(total):
                due = start + k / rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    lag = max(lag, -delay)
                i = serial % pairs_n
                sender = shoppers[i] if (serial // pairs_n) % 2 == 0 else advisors[i]
                client_id = f"load-{serial:08d}"
                serial += 1
                ids.append(client_id)
                await send(i, sender, client_id)
            await wait_delivered(stats, ids, sizes.drain_seconds)
            delivered = [i for i in ids if i in stats.delivered_at]
            latencies = [stats.delivered_at[i] - stats.sent_at[i] for i in delivered]
            first_sent = stats.sent_at[ids[0]]
            last_delivered = max((stats.delivered_at[i] for i in delivered), default=first_sent)
            step = {
                "offered_msgs_per_s": rate,
                "sent": total,
                "delivered": len(delivered),
                "msgs_per_s": round(len(delivered) / max(last_delivered - first_sent, 1e-9), 1),
                "p50_ms": ms(percentile(latencies, 50)) if latencies else None,
                "p99_ms": ms(percentile(latencies, 99)) if latencies else None,
                "max_ms": ms(max(latencies)) if latencies else None,
                "client_send_lag_ms": ms(lag),
            }
            steps.append(step)
            say(
                f"fan-out: offered {rate} msgs/s → delivered {step['delivered']}/{total} at "
                f"{step['msgs_per_s']} msgs/s, p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms"
            )
            if len(delivered) < total or (step["p99_ms"] or 0) > 2000:
                say("fan-out: the server fell behind; no higher rates")
                break
    finally:
        gc.enable()
        gc.unfreeze()
        await close_all(shoppers + advisors)
        await http.close()
        for app in apps:
            app.stop()
    last = steps[-1]
    within_budget = [
        s["offered_msgs_per_s"]
        for s in steps
        if s["delivered"] == s["sent"] and s["p99_ms"] is not None and s["p99_ms"] < 50
    ]
    return {
        "fanout_clients": clients,
        "fanout_offered_msgs_per_s": last["offered_msgs_per_s"],
        "fanout_msgs_per_s": last["msgs_per_s"],
        "fanout_p50_ms": last["p50_ms"],
        "fanout_p99_ms": last["p99_ms"],
        "fanout_undelivered": last["sent"] - last["delivered"],
        "fanout_sustained_msgs_per_s": max(within_budget, default=0),
        "fanout_capacity_msgs_per_s": capacity,
        "fanout_capacity_ack_p50_ms": ms(percentile(capacity_lat, 50)) if capacity_lat else None,
        "fanout_server_cpu_ms_per_msg": round(cpu_per_msg * 1000, 2),
        "fanout_steps": steps,
        "fanout_ack_errors": len(stats.ack_errors),
    }


# --------------------------------------------------------------------------- main

STEPS = frozenset({"ack", "idle", "fanout"})


async def run(
    sizes: Sizes, shape: Shape, keep: Path | None = None, only: frozenset[str] = STEPS
) -> dict[str, Any]:
    limit = raise_open_files_limit()
    say(f"mode {sizes.mode}; open-files limit {limit}")
    needed = sizes.idle_connections + 200
    if limit < needed:
        say(f"the open-files limit {limit} is below the {needed} sockets the idle test needs")
    started = time.monotonic()
    say(f"{shape.database}, {'Redis' if shape.redis_url else 'no Redis'}, {shape.processes} process(es)")
    result: dict[str, Any] = {
        "mode": sizes.mode,
        "database": shape.database,
        "redis": bool(shape.redis_url),
        "processes": shape.processes,
        "cpus": os.cpu_count(),
        "open_files_limit": limit,
        "load_average_at_start": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory(prefix="livedesk-bench-") as tmp:
        workdir = keep or Path(tmp)
        if keep:
            os.makedirs(keep, exist_ok=True)
            say(f"keeping databases and server logs in {keep}")
        if "ack" in only:
            result.update(await bench_ack(workdir, sizes, shape))
        if "idle" in only:
            result.update(await bench_idle(workdir, sizes, shape))
        if "fanout" in only:
            result.update(await bench_fanout(workdir, sizes, shape))
    result["budgets"] = {
        "ack_ratio_max": 2.0,
        "idle_connections_min": 10_000,
        "idle_kib_per_conn_max": 40,
        "fanout_msgs_per_s_min": 1000,
        "fanout_clients": 2000,
        "fanout_p99_ms_max": 50,
    }
    result["load_average_at_end"] = os.getloadavg()[0]
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller numbers; finishes within a minute")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep databases and server logs in DIR")
    parser.add_argument(
        "--database-url", default="", help="PostgreSQL URL of a database of its own (emptied first)"
    )
    parser.add_argument("--redis-url", default="", help="Redis shared by the server processes")
    parser.add_argument(
        "--processes", type=int, default=1, help="livedesk serve processes (needs Redis if > 1)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(STEPS),
        help="run only this measurement (repeatable); default all three",
    )
    parser.add_argument("--serve-echo", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_echo:
        serve_echo(args.serve_echo)
        return
    if args.processes > 1 and not args.redis_url:
        parser.error("--processes above 1 needs --redis-url (the processes fan out through it)")
    if args.processes > 1 and not args.database_url:
        parser.error("--processes above 1 needs --database-url (SQLite is one process's database)")
    shape = Shape(args.database_url, args.redis_url, args.processes)
    only = frozenset(args.only) if args.only else STEPS
    result = asyncio.run(run(QUICK if args.quick else FULL, shape, args.keep, only))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
