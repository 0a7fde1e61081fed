"""The client side of bench/reconnect.py: thousands of light Socket.IO clients in one process
that reconnect as the browser pages do (web/shared/socket.js: socket.io-client with
``reconnectionDelay`` 500 ms doubling to ``reconnectionDelayMax`` 5 s, ±50 % jitter) and
resync after each reconnect (``consultation.current``, then ``chat.sync`` from the last
sequence seen).

Run as ``python bench/reconnect.py --client JOB.json``; the orchestrator drives it with one
command per stdin line and reads one JSON line per answer on stdout. Each client is a raw
Engine.IO v4 websocket over aiohttp speaking just enough Socket.IO: connect with auth, acks,
pong. Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

# socket.io-client's defaults as web/shared/socket.js sets them.
DELAY = 0.5
DELAY_MAX = 5.0
JITTER = 0.5
# Handshakes in flight per client process (the browser's own limit is per page; thousands of
# pages coming back at once is what the server sees).
HANDSHAKES = 200


def backoff(attempt: int) -> float:
    """socket.io-client's Backoff: min(delay·2^attempt, max), then ±jitter·that."""
    base = min(DELAY * 2**attempt, DELAY_MAX)
    deviation = random.random() * JITTER * base
    return base - deviation if random.random() < 0.5 else base + deviation


class Refused(RuntimeError):
    pass


@dataclass
class Client:
    kind: str  # "shopper" | "advisor"
    index: int
    namespace: str
    home: int
    auth: dict[str, Any] | None = None
    cookie: str = ""
    consultation: str | None = None
    resync_after: bool = True
    connected: bool = False
    synced: bool = False
    closing: bool = False
    drops: int = 0
    dropped_at: float = 0.0
    back: list[tuple[float, float]] = field(default_factory=list)  # (dropped_at, back_at)
    failed_attempts: int = 0
    seen: set[int] = field(default_factory=set)
    last_seq: int = 0
    acked: set[int] = field(default_factory=set)
    ws: aiohttp.ClientWebSocketResponse | None = None
    _acks: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    up: asyncio.Event = field(default_factory=asyncio.Event)

    async def handshake(self, http: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
        headers = {"Cookie": f"livedesk_session={self.cookie}"} if self.cookie else {}
        ws = await http.ws_connect(
            url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket",
            headers=headers,
            autoping=False,
            max_msg_size=0,
            timeout=aiohttp.ClientWSTimeout(ws_close=5),
        )
        try:
            opened = await ws.receive_str(timeout=30)
            if not opened.startswith("0"):
                raise Refused(f"no open packet: {opened[:80]!r}")
            payload = "" if self.auth is None else json.dumps(self.auth, separators=(",", ":"))
            await ws.send_str(f"40{self.namespace},{payload}")
            prefix = f"40{self.namespace},"
            while True:
                reply = await ws.receive_str(timeout=30)
                if reply == "2":
                    await ws.send_str("3")
                elif reply.startswith(prefix):
                    return ws
                elif reply.startswith(f"42{self.namespace},"):
                    self._dispatch(reply)
                else:
                    raise Refused(reply[:200])
        except BaseException:
            await ws.close()
            raise

    def _dispatch(self, data: str) -> None:
        ack_prefix = f"43{self.namespace},"
        if data.startswith(ack_prefix):
            body = data[len(ack_prefix) :]
            bracket = body.index("[")
            future = self._acks.pop(int(body[:bracket]), None)
            if future is not None and not future.done():
                args = json.loads(body[bracket:])
                future.set_result(args[0] if args else None)
        elif data.startswith(f"42{self.namespace},"):
            name, *args = json.loads(data[len(self.namespace) + 3 :])
            if name == "chat.message" and args and args[0].get("consultation_id") == self.consultation:
                self._saw(int(args[0]["seq"]))

    def _saw(self, seq: int) -> None:
        self.seen.add(seq)
        self.last_seq = max(self.last_seq, seq)

    async def call(self, event: str, data: Any, within: float = 30.0) -> Any:
        if self.ws is None or self.ws.closed:
            raise ConnectionError("not connected")
        ack_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        await self.ws.send_str(
            f"42{self.namespace},{ack_id}" + json.dumps([event, data], separators=(",", ":"))
        )
        ack = await asyncio.wait_for(future, within)
        if not isinstance(ack, dict) or ack.get("ok") is not True:
            raise RuntimeError(f"{event} failed: {ack!r}")
        return ack.get("data")

    async def resync(self) -> None:
        """What a page does after (re)connecting: its open consultations, then the chat gap."""
        if not self.resync_after:  # the bare-server baseline has no such events
            return
        current = await self.call("consultation.current", {})
        if self.consultation is None:
            return
        if not any(c.get("id") == self.consultation for c in current):
            raise RuntimeError(f"{self.kind} {self.index}: consultation missing after reconnect")
        while True:
            page = await self.call(
                "chat.sync", {"consultation_id": self.consultation, "after_seq": self.last_seq}
            )
            for message in page["messages"]:
                self._saw(int(message["seq"]))
            if page["complete"]:
                return

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data: str = msg.data
            if data == "2":
                await ws.send_str("3")
            elif data.startswith("1") or data.startswith(f"41{self.namespace}"):
                break
            else:
                self._dispatch(data)

    async def run(self, pool: Pool) -> None:
        """Connect, resync, read until the connection drops; again until closed."""
        attempt = 0
        while not self.closing:
            # After a drop the first try goes to the next process, as a balancer that saw the
            # process go would send it; each failed try moves on again.
            url = pool.urls[(self.home + self.drops + attempt) % len(pool.urls)]
            try:
                async with pool.gate:
                    ws = await self.handshake(pool.http, url)
                self.ws = ws
                reader = asyncio.create_task(self._read(ws))
                await self.resync()
            except Exception as exc:
                if self.ws is not None:
                    with contextlib.suppress(Exception):
                        await self.ws.close()
                pool.note_failure(exc)
                self.failed_attempts += 1
                await asyncio.sleep(backoff(attempt))
                attempt += 1
                continue
            attempt = 0
            self.connected = self.synced = True
            if self.dropped_at:
                self.back.append((self.dropped_at, time.monotonic()))
            self.up.set()
            with contextlib.suppress(Exception):
                await reader
            self.connected = self.synced = False
            self.up.clear()
            for future in self._acks.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))
            self._acks.clear()
            if self.closing:
                return
            self.drops += 1
            self.dropped_at = time.monotonic()
            # socket.io-client waits one backoff before its first reconnect attempt too.
            await asyncio.sleep(backoff(0))

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.ws.send_str(f"41{self.namespace},")
            with contextlib.suppress(Exception):
                await self.ws.close()


@dataclass
class Pool:
    urls: list[str]
    http: aiohttp.ClientSession
    gate: asyncio.Semaphore
    errors: dict[str, int] = field(default_factory=dict)

    def note_failure(self, exc: BaseException) -> None:
        key = type(exc).__name__ + (f": {str(exc)[:80]}" if isinstance(exc, Refused | RuntimeError) else "")
        self.errors[key] = self.errors.get(key, 0) + 1


def answer(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def serve(job: dict[str, Any]) -> None:
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        pool = Pool(job["urls"], http, asyncio.Semaphore(HANDSHAKES))
        clients = {
            "shopper": [
                Client(
                    "shopper",
                    i,
                    "/shopper",
                    s["home"],
                    auth={"token": s["token"]},
                    consultation=s["consultation"],
                    resync_after=job.get("resync", True),
                )
                for i, s in enumerate(job["shoppers"])
            ],
            "advisor": [
                Client("advisor", i, "/staff", a["home"], cookie=a["cookie"], consultation=a["consultation"])
                for i, a in enumerate(job["advisors"])
            ],
        }
        tasks: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        pending: list[asyncio.Task[None]] = []
        closing = asyncio.Semaphore(500)
        while line := (await reader.readline()).decode().strip():
            command, _, arg = line.partition(" ")
            if command == "connect":
                group = clients[arg]
                started = time.monotonic()
                tasks += [asyncio.create_task(c.run(pool)) for c in group]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*(c.up.wait() for c in group)), 600)
                answer(done=line, connected=sum(c.synced for c in group), seconds=time.monotonic() - started)
            elif command == "chat":
                # Sent in the background (the orchestrator polls meanwhile); "settle" waits.
                pending += [asyncio.create_task(send(a, f"{arg}-{a.index}")) for a in clients["advisor"]]
                answer(done=line)
            elif command == "settle":
                started = time.monotonic()
                await asyncio.wait_for(asyncio.gather(*pending), 120)
                pending.clear()
                answer(done=line, seconds=time.monotonic() - started)
            elif command == "status":
                answer(
                    done=line,
                    synced={kind: sum(c.synced for c in group) for kind, group in clients.items()},
                    errors=pool.errors,
                )
            elif command == "report":
                answer(done=line, **report(clients))
            elif command == "close":
                started = time.monotonic()
                await asyncio.gather(*(close(c, closing) for c in clients[arg]))
                answer(done=line, seconds=time.monotonic() - started)
            elif command == "exit":
                break
        for client in itertools.chain(*clients.values()):
            client.closing = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def send(advisor: Client, client_id: str) -> None:
    """One chat message from an advisor, waiting (as the page's outbox does) for its socket to be
    back if it is down; a retried send keeps its client id, so it is stored once."""
    if advisor.consultation is None:
        return
    for _ in range(100):
        await advisor.up.wait()
        try:
            ack = await advisor.call(
                "chat.send",
                {"consultation_id": advisor.consultation, "client_id": f"bench-{client_id}", "body": "hello"},
            )
        except Exception:  # dropped meanwhile: again once back
            await asyncio.sleep(0.05)
            continue
        advisor.acked.add(int(ack["seq"]))
        return


async def close(client: Client, gate: asyncio.Semaphore) -> None:
    async with gate:
        await client.close()


def report(clients: dict[str, list[Client]]) -> dict[str, Any]:
    """Each dropped socket's reconnect time, and the chat check: every message an advisor had
    acked is one its shopper saw (live or through chat.sync)."""
    shoppers = {c.consultation: c for c in clients["shopper"] if c.consultation}
    missing = 0
    for advisor in clients["advisor"]:
        shopper = shoppers.get(advisor.consultation)
        if shopper is not None:
            missing += len(advisor.acked - shopper.seen)
    return {
        "back": {kind: [b for c in group for b in c.back] for kind, group in clients.items()},
        "dropped": {kind: sum(1 for c in group if c.drops) for kind, group in clients.items()},
        "not_back": {kind: sum(1 for c in group if not c.synced) for kind, group in clients.items()},
        "failed_attempts": sum(c.failed_attempts for g in clients.values() for c in g),
        "messages_acked": sum(len(a.acked) for a in clients["advisor"]),
        "messages_missing": missing,
    }


def main(path: str) -> None:
    with open(path) as f:
        job = json.load(f)
    asyncio.run(serve(job))
