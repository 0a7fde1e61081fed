"""Hostile clients against the budget in ARCHITECTURE §9 (docs/architecture.md §5): memory
bounded per socket by its queue bound, and a well-behaved client's ack p99 ≤ 250 ms during the attack.

    python bench/hostile.py [--quick]

One ``livedesk serve`` subprocess (SQLite in a temp directory, default bounds). A consultation
holds 200 messages of 4,000 characters, so an unpaged ``chat.sync`` answer would be ~2.4 MB. A
canary shopper keeps sending ``chat.send`` one after the other throughout; its ack times are
measured before and during each attack. The attacks, one after the other:

1. ``never_reading``: K sockets (tabs of the same shopper, each with a 4 kB receive window)
   send 300 ``chat.sync`` each and never read.
2. ``oversize_post``: 300 long-polling sessions each POST 2 MB (declared) with 256 kB sent,
   then leave.
3. ``slow_post``: 50 POSTs declare 100 kB and send 10 bytes, then hold the connection.

For each: the server's RSS growth at its peak and once the attack is over (settled), per
hostile client, the server's descriptors, and the canary's ack p50/p99. Nothing is lost: the
canary's messages are all acknowledged with consecutive sequences.

Progress goes to stdout as ``[bench] …`` lines; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from _common import (
    RawSocket,
    percentile,
    raise_open_files_limit,
    rss_kib,
    say,
    settled_rss_kib,
    start_livedesk,
)
from _realtime_seed import PASSWORD, fresh_database, make_advisor

QUEUE_BYTES = 1_048_576  # LIVEDESK_SOCKET_QUEUE_BYTES's default
# Concurrent well-behaved readers that open the database pool before the attacks (SQLAlchemy's
# default async pool for SQLite: 5 connections plus 10 overflow).
POOL_READERS = 15


def _small_window(addr_info: Any) -> socket.socket:
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=type_, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Canary:
    """A shopper sending one message after another, each awaited; ack times per phase."""

    def __init__(self, sock: RawSocket, cid: str) -> None:
        self.sock, self.cid = sock, cid
        self.times: list[float] = []
        self.seqs: list[int] = []
        self.errors = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        n = 0
        while True:
            n += 1
            payload = {"consultation_id": self.cid, "client_id": f"canary-{n:08d}", "body": f"canary {n}"}
            started = time.perf_counter()
            try:
                data = await self.sock.ok("chat.send", payload, within=30)
            except Exception:  # counted; the bench goes on
                self.errors += 1
                continue
            self.times.append(time.perf_counter() - started)
            self.seqs.append(data["seq"])
            await asyncio.sleep(0.01)  # ~100 messages a second at most

    def start(self) -> None:
        self.times = []
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, float]:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return {
            "canary_acks": len(self.times),
            "canary_ack_p50_ms": round(percentile(self.times, 50) * 1000, 2),
            "canary_ack_p99_ms": round(percentile(self.times, 99) * 1000, 2),
        }


async def _peak_rss(pid: int, done: asyncio.Event) -> int:
    peak = 0
    while not done.is_set():
        peak = max(peak, rss_kib(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.05)
    return peak


async def _measure(name: str, pid: int, canary: Canary, attack: Any, clients: int) -> dict[str, Any]:
    say(f"{name}: {clients} hostile clients")
    before, fds_before = await settled_rss_kib(pid), _fds(pid)
    done = asyncio.Event()
    peak_task = asyncio.create_task(_peak_rss(pid, done))
    canary.start()
    started = time.monotonic()
    try:
        await attack()
    finally:
        seconds = time.monotonic() - started
        figures = await canary.stop()
        done.set()
        peak = await peak_task
    after, fds_after = await settled_rss_kib(pid), _fds(pid)
    result = {
        "clients": clients,
        "attack_seconds": round(seconds, 1),
        "rss_before_kib": before,
        "rss_peak_growth_kib": peak - before,
        "rss_growth_after_kib": after - before,
        "rss_peak_growth_per_client_kib": round((peak - before) / clients, 1),
        "fds_growth_after": fds_after - fds_before,
        **figures,
    }
    say(f"{name}: {json.dumps(result)}")
    return result


async def run(quick: bool, database_url: str = "", redis_url: str = "") -> dict[str, Any]:
    raise_open_files_limit()
    readers = 5 if quick else 20
    workdir = Path(tempfile.mkdtemp(prefix="livedesk-hostile-"))
    url = await fresh_database(workdir, database_url)
    email = await make_advisor(url)
    # The never-reading sockets are tabs of the canary's shopper: no cap on tabs here.
    extra = {"LIVEDESK_SHOPPER_SOCKETS_PER_TOKEN": "0"}
    if redis_url:
        extra["LIVEDESK_REDIS_URL"] = redis_url
    app = start_livedesk("livedesk-hostile", workdir, url, secrets.token_urlsafe(32), **extra)
    results: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "database": "postgresql" if database_url else "sqlite",
        "redis": bool(redis_url),
        "queue_bytes": QUEUE_BYTES,
    }
    try:
        await app.wait_ready("/readyz")
        async with aiohttp.ClientSession() as http:
            async with http.post(app.url + "/api/v1/visitors", json={}) as response:
                token = (await response.json())["token"]
            async with http.post(
                app.url + "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
            ) as r:
                cookie = r.cookies["livedesk_session"].value
            offers: asyncio.Queue[Any] = asyncio.Queue()
            advisor = await RawSocket.open(
                http,
                app.url,
                "/staff",
                headers={"Cookie": f"livedesk_session={cookie}"},
                on_event=lambda name, data: offers.put_nowait(data) if name == "offer.new" else None,
            )
            shopper = await RawSocket.open(http, app.url, "/shopper", auth={"token": token})
            cid = (await shopper.ok("queue.join", {"kind": "chat"}))["id"]
            await asyncio.wait_for(offers.get(), 10)
            await advisor.ok("offer.accept", {"consultation_id": cid})
            say("filling the consultation: 200 messages of 4,000 characters")
            for n in range(200):
                body = "あ" * 3990 + f"{n:010d}"
                await advisor.ok(
                    "chat.send", {"consultation_id": cid, "client_id": f"fill-{n:08d}", "body": body}
                )
            canary = Canary(shopper, cid)

            async def quiet() -> None:
                await asyncio.sleep(5 if quick else 10)

            # The first concurrent reads open the database pool's connections, and each keeps
            # its own page cache (SQLite: up to 2 MB): memory per process, bounded by the pool
            # size, not by any socket. Well-behaved readers take that cost first, so the phases
            # below measure what a hostile socket itself holds.
            results["pool_warmup"] = await _measure(
                "pool_warmup", app.pid, canary, _warm_pool(http, app.url, token, cid), POOL_READERS
            )
            results["baseline"] = await _measure("baseline", app.pid, canary, quiet, 1)

            async def never_reading() -> None:
                async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(socket_factory=_small_window)
                ) as raw:
                    socks = [await _raw_socket(raw, app.url, token) for _ in range(readers)]
                    body = '["chat.sync",' + json.dumps({"consultation_id": cid, "after_seq": 0}) + "]"
                    for ws in socks:
                        for n in range(300):
                            await ws.send_str(f"42/shopper,{n}{body}")
                    # Until the server has dropped every one of them (their reads end).
                    await asyncio.wait_for(asyncio.gather(*(_until_closed(ws) for ws in socks)), 60)

            results["never_reading"] = await _measure(
                "never_reading", app.pid, canary, never_reading, readers
            )
            # Again: what the first round left is reused, not added to (no leak).
            results["never_reading_again"] = await _measure(
                "never_reading", app.pid, canary, never_reading, readers
            )

            async def oversize_post() -> None:
                sids = [await _polling_session(http, app.url) for _ in range(300)]
                for sid in sids:
                    head = (
                        f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n"
                        "Content-Type: text/plain\r\nContent-Length: 2000000\r\n\r\n"
                    )
                    with contextlib.suppress(ConnectionError):
                        _, writer = await _raw(app.url, head.encode() + b"4" + b"x" * 262_144)
                        writer.close()

            results["oversize_post"] = await _measure("oversize_post", app.pid, canary, oversize_post, 300)
            # Again: memory the first round took is reused, not added to (no leak).
            results["oversize_post_again"] = await _measure(
                "oversize_post", app.pid, canary, oversize_post, 300
            )

            async def slow_post() -> None:
                sids = [await _polling_session(http, app.url) for _ in range(50)]
                held = []
                for sid in sids:
                    head = (
                        f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n"
                        "Content-Type: text/plain\r\nContent-Length: 100000\r\n\r\n"
                    )
                    held.append(await _raw(app.url, head.encode() + b"4" + b"x" * 9))
                # Each is answered (400 body_incomplete) at LIVEDESK_SOCKET_POST_SECONDS.
                await asyncio.gather(*(asyncio.wait_for(reader.readline(), 30) for reader, _ in held))
                for _, writer in held:
                    writer.close()

            results["slow_post"] = await _measure("slow_post", app.pid, canary, slow_post, 50)
            seqs = canary.seqs
            # Every canary message acknowledged, with no gap in its sequence numbers.
            results["canary_sent"] = len(seqs)
            results["canary_lost"] = len(set(range(min(seqs), max(seqs) + 1)) - set(seqs))
            results["canary_errors"] = canary.errors
            await shopper.close()
            await advisor.close()
        results["budgets"] = {
            "rss_growth_per_hostile_socket_kib_max": QUEUE_BYTES // 1024,
            "canary_ack_p99_ms_max": 250,
        }
        results["server_healthy"] = app.proc.poll() is None
    finally:
        app.stop()
    return results


def _warm_pool(http: aiohttp.ClientSession, url: str, token: str, cid: str) -> Any:
    async def warm() -> None:
        socks = [
            await RawSocket.open(http, url, "/shopper", auth={"token": token}) for _ in range(POOL_READERS)
        ]
        try:
            for _ in range(3):
                await asyncio.gather(
                    *(sock.ok("chat.sync", {"consultation_id": cid, "after_seq": 0}) for sock in socks)
                )
        finally:
            for sock in socks:
                await sock.close()

    return warm


async def _raw_socket(http: aiohttp.ClientSession, url: str, token: str) -> Any:
    ws = await http.ws_connect(
        url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket", autoping=False
    )
    await ws.receive_str(timeout=10)
    await ws.send_str("40/shopper," + json.dumps({"token": token}))
    while not (await ws.receive_str(timeout=10)).startswith("40/shopper,"):
        pass
    return ws


async def _until_closed(ws: Any) -> None:
    with contextlib.suppress(Exception):
        while (await ws.receive()).type not in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            pass
    await ws.close()


async def _polling_session(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url + "/socket.io/?EIO=4&transport=polling") as response:
        sid: str = json.loads((await response.text())[1:])["sid"]
    # A Socket.IO connect whose answer waits for a poll that never comes.
    async with http.post(f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}", data="40") as response:
        await response.read()
    return sid


async def _raw(url: str, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    return reader, writer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 never-reading sockets instead of 20")
    parser.add_argument(
        "--database-url", default="", help="PostgreSQL URL of a database of its own (emptied first)"
    )
    parser.add_argument("--redis-url", default="", help="Redis for Socket.IO fan-out, as in production")
    args = parser.parse_args()
    started = time.monotonic()
    results = asyncio.run(run(args.quick, args.database_url, args.redis_url))
    results["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
