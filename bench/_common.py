"""Shared pieces of the benchmarks: server subprocesses, process memory and CPU, percentiles,
and a small Engine.IO v4 / Socket.IO v5 client over one aiohttp websocket.

The raw client is used instead of python-socketio's ``AsyncClient`` so thousands of sockets
fit in one bench process and the client's own cost stays small next to the server's.
Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

HOST = "127.0.0.1"


def say(message: str) -> None:
    """A progress line (the last stdout line of a bench is its JSON result)."""
    print(f"[bench] {message}", flush=True)


def raise_open_files_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def settled_rss_kib(pid: int, within: float = 10.0) -> int:
    """RSS once it stops moving (two readings 0.5 s apart within 0.5%), or at the deadline."""
    deadline = time.monotonic() + within
    last = rss_kib(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = rss_kib(pid)
        if abs(now - last) <= last * 0.005:
            return now
        last = now
    return last


# --------------------------------------------------------------------------- CPU placement


# The CPUs the bench was given (a container may allow fewer than the machine has).
ALL_CPUS = frozenset(os.sched_getaffinity(0))


def split_cpus() -> tuple[set[int], set[int]] | None:
    """Two disjoint halves of the CPUs the bench was given — (servers, clients) — or None on a
    single CPU."""
    cpus = sorted(ALL_CPUS)
    if len(cpus) < 2:
        return None
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


def place(pid: int, cpus: set[int] | None) -> None:
    """Run ``pid`` (0: this process) on ``cpus``, or on any the bench was given when None."""
    os.sched_setaffinity(pid, cpus if cpus is not None else ALL_CPUS)


# --------------------------------------------------------------------------- subprocesses


@dataclass
class ServerProcess:
    """A server subprocess started by the bench; ``stop`` ends it by its own pid only."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def wait_ready(self, path: str, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as http:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.url + path) as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not ready within {within}s:\n{self.log_tail()}")
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_process(name: str, argv: list[str], env: dict[str, str], port: int, workdir: Path) -> ServerProcess:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and scripts
            argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    return ServerProcess(name, proc, port, log)


def livedesk_env(workdir: Path, database_url: str, secret: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update(
        {
            "LIVEDESK_HOST": HOST,
            "LIVEDESK_PORT": str(port),
            "LIVEDESK_DATA_DIR": str(workdir / "data"),
            "LIVEDESK_DATABASE_URL": database_url,
            "LIVEDESK_SECRET_KEY": secret,
            "LIVEDESK_LOG_LEVEL": "warning",
            "LIVEDESK_PRESENCE_GRACE_SECONDS": "0",
            # The bench sends far faster than a person types.
            "LIVEDESK_CHAT_RATE_LIMIT": "10000000/minute",
            # ... and opens thousands of sockets and joins from one address.
            "LIVEDESK_SHOPPER_SOCKETS_PER_ADDRESS": "0",
            "LIVEDESK_SHOPPER_CONNECT_RATE_LIMIT": "10000000/minute",
            "LIVEDESK_QUEUE_ADDRESS_RATE_LIMIT": "10000000/minute",
            "LIVEDESK_QUEUE_NETWORK_RATE_LIMIT": "10000000/minute",
            "LIVEDESK_QUEUE_WAITING_PER_ADDRESS": "0",
            "LIVEDESK_QUEUE_WAITING_PER_NETWORK": "0",
            "LIVEDESK_QUEUE_MAX_WAITING": "0",
        }
    )
    env.update(extra)
    return env


def start_livedesk(name: str, workdir: Path, database_url: str, secret: str, **extra: str) -> ServerProcess:
    port = free_port()
    env = livedesk_env(workdir, database_url, secret, port, **extra)
    # BENCH_PROFILE=1: each server runs under cProfile and leaves <name>.prof next to its log
    # (written at its clean shutdown), to see where a figure's CPU goes.
    profile = (
        ["-m", "cProfile", "-o", str(workdir / f"{name}.prof")] if os.environ.get("BENCH_PROFILE") else []
    )
    return start_process(name, [sys.executable, *profile, "-m", "livedesk", "serve"], env, port, workdir)


# --------------------------------------------------------------------------- raw Socket.IO


class SocketError(RuntimeError):
    pass


EventHandler = Callable[[str, Any], None]


@dataclass
class RawSocket:
    """One Socket.IO connection to one namespace over an Engine.IO v4 websocket.

    Frames: ``0{…}`` open, ``2``/``3`` ping/pong, ``40/ns,{auth}`` connect,
    ``42/ns,<id>["event",data]`` event (with ack id), ``43/ns,<id>[data]`` ack.
    """

    ws: aiohttp.ClientWebSocketResponse
    namespace: str
    sid: str = ""
    on_event: EventHandler | None = None
    _acks: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        http: aiohttp.ClientSession,
        base_url: str,
        namespace: str,
        *,
        auth: Any = None,
        headers: dict[str, str] | None = None,
        on_event: EventHandler | None = None,
        within: float = 30.0,
    ) -> RawSocket:
        url = base_url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
        ws = await http.ws_connect(
            url,
            headers=headers or {},
            autoping=False,
            max_msg_size=0,
            timeout=aiohttp.ClientWSTimeout(ws_close=10),
        )
        try:
            opened = await ws.receive_str(timeout=within)
            if not opened.startswith("0"):
                raise SocketError(f"expected an Engine.IO open packet, got {opened[:80]!r}")
            payload = "" if auth is None else json.dumps(auth, separators=(",", ":"))
            await ws.send_str(f"40{namespace},{payload}")
            # The server may send events (presence, say) before its CONNECT answer; they are
            # handed over once the socket exists.
            early: list[str] = []
            prefix = f"40{namespace},"
            while True:
                reply = await ws.receive_str(timeout=within)
                if reply == "2":
                    await ws.send_str("3")
                elif reply.startswith(f"42{namespace},"):
                    early.append(reply)
                elif reply.startswith(prefix):
                    sid = json.loads(reply[len(prefix) :]).get("sid", "")
                    break
                else:
                    raise SocketError(f"connect to {namespace} refused: {reply[:200]!r}")
        except BaseException:
            await ws.close()
            raise
        sock = cls(ws=ws, namespace=namespace, sid=sid, on_event=on_event)
        for frame in early:
            sock._dispatch(frame)
        sock._reader = asyncio.create_task(sock._read())
        return sock

    def _dispatch(self, data: str) -> None:
        event_prefix = f"42{self.namespace},"
        ack_prefix = f"43{self.namespace},"
        if data.startswith(ack_prefix):
            body = data[len(ack_prefix) :]
            bracket = body.index("[")
            future = self._acks.pop(int(body[:bracket]), None)
            if future is not None and not future.done():
                args = json.loads(body[bracket:])
                future.set_result(args[0] if args else None)
        elif data.startswith(event_prefix) and self.on_event is not None:
            name, *args = json.loads(data[len(event_prefix) :])
            self.on_event(name, args[0] if args else None)

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data: str = msg.data
                if data == "2":
                    await self.ws.send_str("3")
                elif data.startswith("1") or data.startswith(f"41{self.namespace}"):
                    break  # Engine.IO close, or Socket.IO disconnect of our namespace
                else:
                    self._dispatch(data)
        except (aiohttp.ClientError, asyncio.CancelledError, ConnectionError):
            pass
        finally:
            for future in self._acks.values():
                if not future.done():
                    future.set_exception(SocketError("connection closed"))
            self._acks.clear()

    def frame(self, event: str, data: Any) -> tuple[str, asyncio.Future[Any]]:
        """The encoded event with a fresh ack id, and the future its ack resolves."""
        ack_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        body = json.dumps([event, data], separators=(",", ":"))
        return f"42{self.namespace},{ack_id}{body}", future

    async def send_frame(self, frame: str) -> None:
        await self.ws.send_str(frame)

    async def call(self, event: str, data: Any, within: float = 10.0) -> Any:
        frame, future = self.frame(event, data)
        await self.ws.send_str(frame)
        return await asyncio.wait_for(future, within)

    async def ok(self, event: str, data: Any, within: float = 10.0) -> Any:
        ack = await self.call(event, data, within)
        if not isinstance(ack, dict) or ack.get("ok") is not True:
            raise SocketError(f"{event} failed: {ack!r}")
        return ack.get("data")

    @property
    def open_now(self) -> bool:
        return not self.ws.closed and self._reader is not None and not self._reader.done()

    async def close(self) -> None:
        if not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.ws.send_str(f"41{self.namespace},")
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader


async def open_many(
    count: int, opener: Callable[[int], Any], concurrency: int = 100, progress: str = ""
) -> list[Any]:
    """Open ``count`` sockets with at most ``concurrency`` handshakes in flight."""
    gate = asyncio.Semaphore(concurrency)
    done = 0
    step = max(1, count // 5)

    async def one(i: int) -> Any:
        nonlocal done
        async with gate:
            sock = await opener(i)
        done += 1
        if progress and done % step == 0:
            say(f"{progress}: {done}/{count}")
        return sock

    results = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    opened = [r for r in results if not isinstance(r, BaseException)]
    if failures:
        say(f"{len(failures)} of {count} connections failed, first: {failures[0]!r}")
    return opened


async def close_all(sockets: Sequence[RawSocket], concurrency: int = 500) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(sock: RawSocket) -> None:
        async with gate:
            await sock.close()

    await asyncio.gather(*(one(s) for s in sockets), return_exceptions=True)
