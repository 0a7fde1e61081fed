"""Reconnect storm (issue 22 item 5; budget in docs/architecture.md §6).

    python bench/reconnect.py [--shoppers N] [--advisors M] [--database-url URL --redis-url URL
                               --processes 2] [--client-processes 2] [--keep DIR]

N shopper sockets and M advisor sockets (M of the shoppers are in an active chat with one
advisor each, the two parties on different processes) are connected across ``--processes``
``livedesk serve`` processes; then one process is killed with SIGKILL. With one process
(SQLite) it is started again on the same port at once: a restart storm. Every client comes
back as the browser pages do (web/shared/socket.js: backoff 0.5 s doubling to 5 s, ±50 %
jitter, the next process on each retry) and resyncs: ``consultation.current``, then
``chat.sync`` from the last sequence it saw. Each advisor sends one chat message before the
kill and one right after it (held until its socket is back); every acked message must reach
its shopper, live or through the sync. Afterwards the database must show every advisor
present, one shopper connection row per shopper socket, every consultation still active.

Reported: server CPU per connect (shoppers and advisors apart) and per disconnect (the clients
close cleanly at the end), CPU per reconnect+resync during the storm, time from the kill to
each client back and synced (p50/p99/max), and the same connect/disconnect costs on a bare
python-socketio server in the same run (the baseline). The clients run in
``--client-processes`` processes of their own (bench/_storm_client.py). Everything talks to
127.0.0.1 only. Progress goes to stdout as ``[bench] …`` lines; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    ServerProcess,
    cpu_seconds,
    free_port,
    livedesk_env,
    percentile,
    raise_open_files_limit,
    say,
    start_process,
)
from _realtime_seed import fresh_database, seed_pairs, seed_shoppers, serve_echo

HERE = Path(__file__).resolve().parent


class ClientProcess:
    """One bench/_storm_client.py process, driven a line at a time."""

    def __init__(self, name: str, job: dict[str, Any], workdir: Path) -> None:
        path = workdir / f"{name}.json"
        path.write_text(json.dumps(job))
        self.name = name
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, str(HERE / "reconnect.py"), "--client", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(workdir / f"{name}.log").open("wb"),
        )

    async def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        line = await asyncio.to_thread(self.proc.stdout.readline)
        if not line:
            raise RuntimeError(f"{self.name} ended (see {self.name}.log)")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(b"exit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=5)


async def ask_all(clients: list[ClientProcess], command: str) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(c.ask(command) for c in clients)))


def cpu(servers: list[ServerProcess]) -> float:
    return sum(cpu_seconds(s.pid) for s in servers if s.proc.poll() is None)


async def timed(
    servers: list[ServerProcess], clients: list[ClientProcess], command: str, settle: float
) -> float:
    """Server CPU seconds spent from the command until ``settle`` s after every client answered."""
    before = cpu(servers)
    await ask_all(clients, command)
    await asyncio.sleep(settle)
    return cpu(servers) - before


def loadavg() -> list[str]:
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def ms(seconds: float, count: int) -> float:
    return round(seconds / max(count, 1) * 1000, 3)


# --------------------------------------------------------------------------- the baseline


async def baseline(workdir: Path, count: int, client_processes: int) -> dict[str, Any]:
    """A bare python-socketio server: CPU per connect and per disconnect of idle sockets."""
    port = free_port()
    argv = [sys.executable, str(HERE / "reconnect.py"), "--serve-echo", str(port)]
    echo = start_process("echo", argv, dict(os.environ), port, workdir)
    clients: list[ClientProcess] = []
    try:
        await echo.wait_ready("/readyz")
        shoppers = [{"token": "x", "home": 0, "consultation": None} for _ in range(count)]
        clients = [
            ClientProcess(
                f"echo-client-{k}",
                {
                    "urls": [echo.url],
                    "shoppers": shoppers[k::client_processes],
                    "advisors": [],
                    "resync": False,
                },
                workdir,
            )
            for k in range(client_processes)
        ]
        connect = await timed([echo], clients, "connect shopper", 1.0)
        disconnect = await timed([echo], clients, "close shopper", 1.0)
        return {
            "sockets": count,
            "cpu_ms_per_connect": ms(connect, count),
            "cpu_ms_per_disconnect": ms(disconnect, count),
        }
    finally:
        for client in clients:
            client.stop()
        echo.stop()


# --------------------------------------------------------------------------- the storm


async def seed(url: str, secret: str, shoppers: int, advisors: int) -> tuple[list[Any], list[str]]:
    from livedesk.identity import VisitorClaims, VisitorTokens

    pairs = await seed_pairs(url, secret, advisors)
    tokens = VisitorTokens(secret, 24 * 3600)
    idle = await seed_shoppers(url, shoppers - advisors)
    return pairs, [
        tokens.issue(VisitorClaims(shopper_id=i, visitor_id=f"idle{n}")) for n, i in enumerate(idle)
    ]


def jobs(
    pairs: list[Any], idle: list[str], processes: int, count: int, urls: list[str]
) -> list[dict[str, Any]]:
    """Pairs keep both parties in one client process (it checks their messages) and on
    different server processes; idle shoppers are spread round-robin."""
    out: list[dict[str, Any]] = [{"urls": urls, "shoppers": [], "advisors": []} for _ in range(count)]
    for j, pair in enumerate(pairs):
        job = out[j % count]
        job["shoppers"].append(
            {"token": pair.shopper_token, "home": j % processes, "consultation": pair.consultation_id}
        )
        job["advisors"].append(
            {"cookie": pair.advisor_cookie, "home": (j + 1) % processes, "consultation": pair.consultation_id}
        )
    for i, token in enumerate(idle):
        out[i % count]["shoppers"].append({"token": token, "home": i % processes, "consultation": None})
    return out


async def database_state(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from livedesk.kit.db import Database
    from livedesk.models import (
        AdvisorPresence,
        AppProcess,
        Consultation,
        ConsultationStatus,
        PresenceStatus,
        ShopperConnection,
        StaffConnection,
    )

    db = Database(url)
    try:
        async with db.read() as session:

            async def count(query: Any) -> int:
                return int(await session.scalar(query) or 0)

            return {
                "processes": await count(select(func.count()).select_from(AppProcess)),
                "advisors_present": await count(
                    select(func.count())
                    .select_from(AdvisorPresence)
                    .where(AdvisorPresence.status != PresenceStatus.OFFLINE)
                ),
                "staff_connections": await count(select(func.count()).select_from(StaffConnection)),
                "shopper_connections": await count(select(func.count()).select_from(ShopperConnection)),
                "consultations_active": await count(
                    select(func.count())
                    .select_from(Consultation)
                    .where(Consultation.status == ConsultationStatus.ACTIVE)
                ),
            }
    finally:
        await db.dispose()


async def storm(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    secret = secrets.token_hex(32)
    url = await fresh_database(workdir / "db", args.database_url)
    say(f"seeding {args.shoppers} shoppers, {args.advisors} advisors")
    pairs, idle = await seed(url, secret, args.shoppers, args.advisors)
    extra: dict[str, str] = {}
    if args.redis_url:
        extra = {
            "LIVEDESK_REDIS_URL": args.redis_url,
            "LIVEDESK_REDIS_CHANNEL": f"h-reconnect-{secrets.token_hex(4)}",
        }
    ports = [free_port() for _ in range(args.processes)]

    def start(i: int) -> ServerProcess:
        env = livedesk_env(workdir, url, secret, ports[i], **extra)
        name = f"livedesk-{i}-{time.monotonic_ns()}"
        # BENCH_PROFILE=1: each server runs under cProfile and leaves <name>.prof next to its log
        # at a clean stop (the killed one leaves none; the survivor's covers the storm).
        profile = (
            ["-m", "cProfile", "-o", str(workdir / f"{name}.prof")] if os.environ.get("BENCH_PROFILE") else []
        )
        return start_process(
            name,
            [sys.executable, *profile, "-m", "livedesk", "serve"],
            env,
            ports[i],
            workdir,
        )

    servers = [start(i) for i in range(args.processes)]
    clients: list[ClientProcess] = []
    result: dict[str, Any] = {}
    try:
        await asyncio.gather(*(s.wait_ready("/readyz", within=60) for s in servers))
        job_list = jobs(pairs, idle, args.processes, args.client_processes, [s.url for s in servers])
        clients = [ClientProcess(f"client-{k}", job, workdir) for k, job in enumerate(job_list)]
        shoppers, advisors = args.shoppers, args.advisors
        say("connecting shoppers")
        connect_shoppers = await timed(servers, clients, "connect shopper", 1.0)
        say("connecting advisors")
        connect_advisors = await timed(servers, clients, "connect advisor", 1.0)
        await ask_all(clients, "chat before")
        await ask_all(clients, "settle")
        state = await ask_all(clients, "status")
        synced = {k: sum(s["synced"][k] for s in state) for k in ("shopper", "advisor")}
        say(f"connected: {synced}")
        before = cpu(servers)
        await asyncio.sleep(3.0)
        idle_cpu = (cpu(servers) - before) / 3.0

        victim = servers[0]
        survivors = servers[1:]
        load = loadavg()
        say(f"SIGKILL {victim.name} (load {' '.join(load)})")
        cpu_before = cpu(survivors)
        victim.proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        victim.proc.wait(timeout=10)
        restart_s = 0.0  # with one process: how long the new one took to answer /readyz
        if len(servers) == 1:  # one process: the restart storm, on the same port
            servers[0] = start(0)
            survivors = [servers[0]]
            await servers[0].wait_ready("/readyz", within=60)
            restart_s = time.monotonic() - killed_at
        await ask_all(clients, "chat after")
        deadline = killed_at + args.wait
        while True:
            await asyncio.sleep(0.5)
            state = await ask_all(clients, "status")
            synced = {k: sum(s["synced"][k] for s in state) for k in ("shopper", "advisor")}
            if synced == {"shopper": shoppers, "advisor": advisors} or time.monotonic() > deadline:
                break
        all_back = time.monotonic() - killed_at
        storm_cpu = cpu(survivors) - cpu_before
        await ask_all(clients, "settle")
        await asyncio.sleep(1.0)  # live deliveries of the last sends
        reports = await ask_all(clients, "report")
        back = [
            b - killed_at
            for r in reports
            for kind in ("shopper", "advisor")
            for _, b in r["back"][kind]
            if b > killed_at
        ]
        dropped = sum(r["dropped"][k] for r in reports for k in ("shopper", "advisor"))
        state_back = await database_state(url)
        say(f"all back after {all_back:.1f}s: {synced}, {state_back}; waiting for the sweep")
        sweep_deadline = time.monotonic() + 60
        while True:
            db_state = await database_state(url)
            if db_state["processes"] == len(survivors) or time.monotonic() > sweep_deadline:
                break
            await asyncio.sleep(1.0)
        say("closing advisors, then shoppers")
        disconnect_advisors = await timed(servers, clients, "close advisor", 2.0)
        disconnect_shoppers = await timed(servers, clients, "close shopper", 2.0)
        reconnected = len(back)
        result = {
            "shoppers": shoppers,
            "advisors": advisors,
            "cpu_ms_per_connect": {
                "shopper": ms(connect_shoppers, shoppers),
                "advisor": ms(connect_advisors, advisors),
            },
            "cpu_ms_per_disconnect": {
                "shopper": ms(disconnect_shoppers, shoppers),
                "advisor": ms(disconnect_advisors, advisors),
            },
            "idle_cpu_percent": round(idle_cpu * 100, 1),
            "storm": {
                "dropped": dropped,
                "back": reconnected,
                "not_back": {k: sum(r["not_back"][k] for r in reports) for k in ("shopper", "advisor")},
                "all_back_s": round(all_back, 2),
                "restart_ready_s": round(restart_s, 2),
                "back_s_p50": round(percentile(back, 50), 2) if back else None,
                "back_s_p99": round(percentile(back, 99), 2) if back else None,
                "back_s_max": round(max(back), 2) if back else None,
                "within_budget": bool(back) and max(back) <= 20.0 and reconnected == dropped,
                "cpu_ms_per_reconnect": ms(storm_cpu, reconnected),
                "failed_attempts": sum(r["failed_attempts"] for r in reports),
                "errors": state[0]["errors"] if state else {},
                "load_at_kill": load,
            },
            "chat": {
                "acked": sum(r["messages_acked"] for r in reports),
                "missing": sum(r["messages_missing"] for r in reports),
            },
            "database_when_back": state_back,
            "database_after": db_state,
        }
        return result
    finally:
        for client in clients:
            client.stop()
        for server in servers:
            server.stop()


async def run(args: argparse.Namespace, keep: Path | None) -> dict[str, Any]:
    raise_open_files_limit()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="livedesk-reconnect-") as tmp:
        workdir = keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        say(f"baseline: {args.baseline_sockets} sockets on a bare python-socketio server")
        base = await baseline(workdir, args.baseline_sockets, args.client_processes)
        say(f"baseline: {base}")
        livedesk = await storm(args, workdir)
    connect = livedesk["cpu_ms_per_connect"]["shopper"]
    return {
        "bench": "reconnect",
        "shape": {
            "database": "postgresql" if args.database_url else "sqlite",
            "redis": bool(args.redis_url),
            "processes": args.processes,
            "client_processes": args.client_processes,
        },
        "baseline_bare_socketio": base,
        "livedesk": livedesk,
        "connect_ratio_to_baseline": round(connect / base["cpu_ms_per_connect"], 1)
        if base["cpu_ms_per_connect"]
        else None,
        "loadavg": loadavg(),
        "seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shoppers", type=int, default=10_000, help="shopper sockets (advisors' chat partners included)"
    )
    parser.add_argument(
        "--advisors", type=int, default=500, help="advisor sockets, each in a chat with one shopper"
    )
    parser.add_argument(
        "--database-url", default="", help="PostgreSQL URL of a database of its own (emptied first)"
    )
    parser.add_argument("--redis-url", default="", help="Redis shared by the server processes")
    parser.add_argument("--processes", type=int, default=1, help="livedesk serve processes; one is killed")
    parser.add_argument(
        "--client-processes", type=int, default=2, help="processes the clients are spread over"
    )
    parser.add_argument(
        "--baseline-sockets", type=int, default=2_000, help="sockets for the bare server baseline"
    )
    parser.add_argument(
        "--wait", type=float, default=60.0, help="seconds to wait for every client to be back"
    )
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep databases and logs in DIR")
    parser.add_argument("--serve-echo", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--client", metavar="JOB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_echo:
        serve_echo(args.serve_echo)
        return
    if args.client:
        from _storm_client import main as client_main

        client_main(args.client)
        return
    if args.processes > 1 and not (args.redis_url and args.database_url):
        parser.error("--processes above 1 needs --database-url and --redis-url")
    if args.advisors > args.shoppers:
        parser.error("--advisors cannot exceed --shoppers (each advisor chats with one shopper)")
    print(json.dumps(asyncio.run(run(args, args.keep))), flush=True)


if __name__ == "__main__":
    main()
