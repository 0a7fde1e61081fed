"""Hostile clients cost bounded memory and never hang a handler (issue 18, items 1, 2 and 9).

Each test is an attack from outside: a socket that asks and never reads, oversize and slow
long-polling POSTs, long polls abandoned mid-wait, and a SIGTERM while all of that hangs. The
server's own figures are read where they are the proof (the bytes queued for a socket, the
open connections aiohttp holds); descriptors and RSS come from /proc (client and server share
this process, and the clients close their side)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from livedesk.models import Role
from livedesk.realtime.emit import SIO
from livedesk.settings import Settings
from tests.conftest import wait_until

QUEUE_BYTES = 262_144
PAGE_BYTES = 65_536


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "presence_grace_seconds": 0.0,
            "chat_rate_limit": "1000/10seconds",
            "socket_queue_bytes": QUEUE_BYTES,
            "socket_write_stall_seconds": 2.0,
            "socket_post_seconds": 1.0,
            "chat_sync_page_bytes": PAGE_BYTES,
            # A quick heartbeat (the library's service task reads it only as it starts).
            "socket_ping_interval_seconds": 1,
            "socket_ping_timeout_seconds": 1,
        }
    )


@pytest.fixture
def client(client: TestClient[web.Request, web.Application]) -> TestClient[web.Request, web.Application]:
    """The app served as ``livedesk serve`` serves it: aiohttp's test server cancels the handler
    of a connection its client dropped, ``web.run_app`` does not (``handler_cancellation``)."""
    runner = client.server.runner
    assert runner is not None
    assert runner.server is not None
    runner.server.handler_cancellation = False
    return client


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _handlers() -> int:
    """aiohttp request handlers still running in this process (a connection's handler runs on
    after its client has gone unless it returns by itself: aiohttp's handler_cancellation is
    off)."""
    return sum(
        1
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") == "RequestHandler._handle_request"
    )


async def _active_chat(live: Any, make_staff: Any) -> tuple[Any, Any, str, str]:
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    visitor = await live.visitor()
    shopper = await live.shopper(visitor["token"])
    consultation = await shopper.ok("queue.join", {"kind": "chat"})
    await console.wait_for("offer.new")
    await console.ok("offer.accept", {"consultation_id": consultation["id"]})
    return shopper, console, consultation["id"], visitor["token"]


async def _fill(shopper: Any, cid: str, count: int) -> None:
    """``count`` messages of 4,000 characters (12 kB in UTF-8 each)."""
    for n in range(count):
        body = "あ" * 3990 + f"{n:010d}"
        await shopper.ok("chat.send", {"consultation_id": cid, "client_id": f"fill-{n:08d}", "body": body})


async def _raw_shopper(http: aiohttp.ClientSession, url: str, token: str) -> tuple[Any, str]:
    """A shopper socket spoken by hand (so the test decides when, if ever, it reads)."""
    ws = await http.ws_connect(
        url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket",
        autoping=False,
        max_msg_size=0,
    )
    opened = await ws.receive_str(timeout=5)
    sid = json.loads(opened[1:])["sid"]
    await ws.send_str("40/shopper," + json.dumps({"token": token}))
    while not (await ws.receive_str(timeout=5)).startswith("40/shopper,"):
        pass
    return ws, sid


def _small_window(addr_info: Any) -> socket.socket:
    """A client socket with a 4 kB receive buffer: a slow or hostile reader whose unread data
    backs up into the server quickly (not after megabytes of loopback kernel buffers)."""
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=type_, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


def _never_reader_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(socket_factory=_small_window))


def _sync_frame(ack_id: int, cid: str) -> str:
    return f'42/shopper,{ack_id}["chat.sync",' + json.dumps({"consultation_id": cid, "after_seq": 0}) + "]"


# --- 1. backpressure --------------------------------------------------------------------------


async def test_a_socket_that_asks_and_never_reads_is_dropped_with_bounded_memory(
    live: Any, make_staff: Any, app: web.Application
) -> None:
    shopper, console, cid, token = await _active_chat(live, make_staff)
    await _fill(shopper, cid, 40)  # one unpaged answer was ~0.5 MB
    eio = app[SIO].eio
    rss_before = _rss_kib()
    async with _never_reader_session() as http:
        ws, sid = await _raw_shopper(http, live.url, token)
        sock = eio.sockets[sid]
        # 300 requests (30 kB) whose answers (0.5 MB each before paging) are never read: the
        # client's reader stops at 64 kB and the kernel's buffers fill.
        for n in range(300):
            await ws.send_str(_sync_frame(n, cid))
        peak = 0
        rss_peak = 0

        async def dropped() -> bool:
            nonlocal peak, rss_peak
            peak = max(peak, getattr(sock, "_queued", 0))
            rss_peak = max(rss_peak, _rss_kib())
            return bool(sock.closed) and sock not in getattr(eio, "lean_sockets", {sock})

        try:
            await wait_until(dropped, within=15, every=0.01)
        except AssertionError:
            state = {
                k: getattr(sock, k, None)
                for k in ("closed", "_queued", "_writing_since", "_resume", "_broken")
            }
            raise AssertionError(f"not dropped: {state}, now {asyncio.get_running_loop().time()}") from None
        # Its reads paused at half the bound (plus the page being answered): its own
        # requests never take it to the bound; the heartbeat or the write deadline end it.
        assert peak <= QUEUE_BYTES // 2 + 2 * PAGE_BYTES, peak
        assert getattr(sock, "_queued", None) == 0
        assert set(sock.queue._queue) <= {None}  # nothing but stop marks left
        # RSS: the unbounded queue held 300 answers here (~150 MB); now a few pages at most.
        assert rss_peak - rss_before < 48 * 1024, (rss_before, rss_peak)
        # The connection itself is gone: reading it ends (after what the kernel held).
        async with asyncio.timeout(10):
            while (await ws.receive()).type not in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                pass
    # A well-behaved party was answered throughout, and still is.
    page = await console.ok("chat.sync", {"consultation_id": cid, "after_seq": 0})
    assert page["messages"][0]["seq"] == 1


async def test_a_socket_others_write_to_is_dropped_at_its_bound(
    live: Any, make_staff: Any, app: web.Application
) -> None:
    """Chat from the advisor piles up for a shopper socket that pongs (blindly) and never
    reads; no write deadline here (10 minutes): the queue's bound alone drops it."""
    shopper, console, cid, token = await _active_chat(live, make_staff)
    eio = app[SIO].eio
    eio.stall_seconds = 600.0
    async with _never_reader_session() as http:
        ws, sid = await _raw_shopper(http, live.url, token)
        sock = eio.sockets[sid]
        peak, sent = 0, 0
        while not sock.closed:
            assert sent < 2000, "never dropped"
            body = "あ" * 3990 + f"{sent:010d}"
            await console.ok(
                "chat.send", {"consultation_id": cid, "client_id": f"adv-{sent:08d}", "body": body}
            )
            peak, sent = max(peak, sock._queued), sent + 1
            with contextlib.suppress(ConnectionError):  # dropped by now
                await ws.send_str("3")  # a pong: the heartbeat is satisfied
        assert peak <= QUEUE_BYTES
        await wait_until(lambda: _true(sock not in eio.lean_sockets and sock._queued == 0), within=5)
    # The shopper's own well-behaved socket got every message.
    await shopper.wait_for("chat.message", lambda m: m["seq"] == sent, within=10)


async def test_the_heartbeat_drops_a_silent_socket_whose_writes_are_stuck(
    live: Any, make_staff: Any, app: web.Application
) -> None:
    """No bound and no write deadline (both out of reach here): the client pongs blindly until
    the server's writes to it are stuck, then goes silent; the missed pong alone ends the
    socket and frees its queue, though its CLOSE packet can never be written."""
    shopper, _console, cid, token = await _active_chat(live, make_staff)
    await _fill(shopper, cid, 40)
    eio = app[SIO].eio
    eio.queue_bytes, eio.stall_seconds = 256 * 1024 * 1024, 600.0
    loop = asyncio.get_running_loop()
    async with _never_reader_session() as http:
        ws, sid = await _raw_shopper(http, live.url, token)
        sock = eio.sockets[sid]
        for n in range(60):
            await ws.send_str(_sync_frame(n, cid))

        async def stuck() -> bool:
            await ws.send_str("3")  # a blind pong keeps the heartbeat content meanwhile
            since = sock._writing_since
            return bool(since) and loop.time() - since > 0.5

        await wait_until(stuck, within=15, every=0.1)
        assert not sock.closed
        silent = time.monotonic()
        await wait_until(lambda: _true(sock.closed and sock not in eio.lean_sockets), within=10, every=0.02)
        # Ping interval 1 s + timeout 1 s + the library's pass over its sockets.
        assert time.monotonic() - silent < 6
        assert sock._broken
        assert sock._queued == 0


async def _true(value: Any) -> bool:
    return bool(value)


async def test_a_stalled_write_is_cut_off_at_its_deadline(
    live: Any, make_staff: Any, app: web.Application
) -> None:
    """Neither the bound (256 MB here) nor the heartbeat (a minute) can end it: the write
    deadline (2 s) does."""
    shopper, _console, cid, token = await _active_chat(live, make_staff)
    await _fill(shopper, cid, 40)
    eio = app[SIO].eio
    eio.queue_bytes, eio.ping_timeout = 256 * 1024 * 1024, 60
    loop = asyncio.get_running_loop()
    async with _never_reader_session() as http:
        ws, sid = await _raw_shopper(http, live.url, token)
        sock = eio.sockets[sid]
        for n in range(60):
            await ws.send_str(_sync_frame(n, cid))
        await wait_until(lambda: _true(getattr(sock, "_writing_since", 0.0) > 0), within=10, every=0.01)
        since = sock._writing_since
        await wait_until(lambda: _true(sock.closed), within=10, every=0.02)
        # Deadline 2 s, swept every half second (a later write may be the one that stalled).
        assert 2.0 <= loop.time() - since < 6
        await wait_until(lambda: _true(sock not in eio.lean_sockets and sock._queued == 0), within=5)


async def _upgraded_shopper(http: aiohttp.ClientSession, url: str, token: str) -> tuple[Any, str]:
    """A shopper socket that starts on long polling and upgrades to a websocket, spoken by hand
    (the websocket then reads only when the test says)."""
    sid = await _polling_sid(http, url)
    polling = f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    async with http.post(polling, data="40/shopper," + json.dumps({"token": token})) as response:
        assert response.status == 200
    async with http.get(polling) as response:
        assert (await response.text()).startswith("40/shopper,")
    ws = await http.ws_connect(
        url.replace("http://", "ws://", 1) + f"/socket.io/?EIO=4&transport=websocket&sid={sid}",
        autoping=False,
        max_msg_size=0,
    )
    await ws.send_str("2probe")
    assert await ws.receive_str(timeout=5) == "3probe"
    await ws.send_str("5")  # upgrade
    return ws, sid


async def test_an_upgraded_socket_that_never_reads_is_cut_off_at_the_write_deadline(
    live: Any, make_staff: Any, app: web.Application
) -> None:
    """Polling first, then the websocket upgrade, then requests whose answers are never read.
    Neither the bound (256 MB here) nor the heartbeat (a minute; blind pongs anyway) can end
    it: the write deadline (2 s) must, as for a websocket that came first. (The library's
    loops the upgraded path used to keep had no deadline: it held its answers for good.)"""
    shopper, _console, cid, token = await _active_chat(live, make_staff)
    await _fill(shopper, cid, 40)
    eio = app[SIO].eio
    eio.queue_bytes, eio.ping_timeout = 256 * 1024 * 1024, 60
    loop = asyncio.get_running_loop()
    async with _never_reader_session() as http:
        ws, sid = await _upgraded_shopper(http, live.url, token)
        sock = eio.sockets[sid]
        await wait_until(lambda: _true(sock.upgraded), within=5)
        for n in range(60):
            await ws.send_str(_sync_frame(n, cid))
        started = loop.time()

        async def cut_off() -> bool:
            with contextlib.suppress(ConnectionError):
                await ws.send_str("3")  # a blind pong
            return bool(sock.closed) and sock not in eio.lean_sockets

        await wait_until(cut_off, within=15, every=0.1)
        # Deadline 2 s, swept every half second, after the answers filled the buffers.
        assert loop.time() - started < 10
        assert sock._broken
        assert sock._queued == 0
        assert set(sock.queue._queue) <= {None}
    # The same visitor is served again, on a new socket: the old client may have missed the 1 s
    # heartbeat of this suite while a loaded machine answered the 60 requests.
    again = await live.shopper(token)
    page = await again.ok("chat.sync", {"consultation_id": cid, "after_seq": 0})
    assert page["messages"][0]["seq"] == 1


async def test_chat_sync_answers_in_bounded_pages_with_a_cursor(live: Any, make_staff: Any) -> None:
    shopper, console, cid, _ = await _active_chat(live, make_staff)
    await _fill(shopper, cid, 25)
    await shopper.ok("chat.send", {"consultation_id": cid, "client_id": "small-0001", "body": "last"})
    seen: list[int] = []
    after, pages = 0, 0
    while True:
        page = await console.ok("chat.sync", {"consultation_id": cid, "after_seq": after})
        pages += 1
        size = len(json.dumps(page["messages"], ensure_ascii=False).encode())
        assert size <= PAGE_BYTES, size
        assert page["last_seq"] == 26
        seen += [m["seq"] for m in page["messages"]]
        assert page["next_after_seq"] == seen[-1]
        if page["complete"]:
            break
        after = page["next_after_seq"]
    assert seen == list(range(1, 27))
    assert pages >= 5  # 25 × 12 kB in pages of 64 kB
    done = await console.ok("chat.sync", {"consultation_id": cid, "after_seq": 26})
    assert done == {"messages": [], "last_seq": 26, "complete": True, "next_after_seq": 26}


# --- 2. long polling --------------------------------------------------------------------------


def _production_heartbeat(app: web.Application) -> None:
    """The default heartbeat (25 s + 20 s) for the sessions this test opens: long polls then
    wait as long as they would in production, and nothing ends them early but the fix."""
    app[SIO].eio.ping_interval, app[SIO].eio.ping_timeout = 25, 20


async def _polling_sid(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url + "/socket.io/?EIO=4&transport=polling") as response:
        assert response.status == 200
        text = await response.text()
    sid: str = json.loads(text[1:])["sid"]
    return sid


async def _raw_request(
    url: str, head: str, body: bytes = b""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head.encode() + body)
    await writer.drain()
    return reader, writer


async def test_an_oversize_polling_post_gets_413_and_its_handler_ends(
    live: Any, app: web.Application
) -> None:
    _production_heartbeat(app)
    async with aiohttp.ClientSession() as http:
        sid = await _polling_sid(http, live.url)
        body = io.BytesIO(b"4" + b"x" * 1_500_000)
        headers = {"Content-Length": "1500001"}
        url = f"{live.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
        async with http.post(url, data=body, headers=headers) as response:
            assert response.status == 413
            error = (await response.json())["error"]
    assert error["code"] == "payload_too_large"
    await wait_until(lambda: _true(_handlers() == 0), within=5)


async def test_300_abandoned_oversize_posts_leave_no_descriptor_memory_or_handler(
    live: Any, app: web.Application
) -> None:
    """The reported attack: 300 oversize POSTs, each on a session of its own, abandoned with
    256 kB of their body sent (enough for aiohttp to stop reading, so a hung handler would
    hold the connection in CLOSE_WAIT)."""
    _production_heartbeat(app)
    async with aiohttp.ClientSession() as http:
        sids = [await _polling_sid(http, live.url) for _ in range(300)]
        for sid in sids:  # a Socket.IO connect to "/": its answer waits for a poll never made
            url = f"{live.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
            async with http.post(url, data="40") as response:
                assert response.status == 200
    fds, rss, handlers = _fds(), _rss_kib(), _handlers()
    chunk = b"4" + b"x" * 262_144
    for batch in range(6):  # 6 × 50 (the attack waited 0.5 s before leaving; no sleep here)
        opened = []
        for sid in sids[batch * 50 : (batch + 1) * 50]:
            head = (
                f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: text/plain\r\nContent-Length: 2000000\r\n\r\n"
            )
            with contextlib.suppress(ConnectionError):  # the server may answer 413 and close first
                opened.append(await _raw_request(live.url, head, chunk))
        for _reader, writer in opened:
            writer.close()
        for _reader, writer in opened:
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    await wait_until(lambda: _true(_handlers() <= handlers), within=15)
    await wait_until(lambda: _true(_fds() <= fds + 4), within=5)
    assert _rss_kib() - rss < 32 * 1024


async def test_a_post_without_length_or_with_a_body_that_never_comes_is_answered(
    live: Any, app: web.Application
) -> None:
    _production_heartbeat(app)
    async with aiohttp.ClientSession() as http:
        sid = await _polling_sid(http, live.url)
    path = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    chunked = f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    reader, writer = await _raw_request(live.url, chunked, b"5\r\n4ping\r\n")
    async with asyncio.timeout(5):
        assert (await reader.readline()).startswith(b"HTTP/1.1 411")
    writer.close()
    # Declares 1,000 bytes, sends 10, keeps the connection open: answered at the deadline (1 s).
    slow = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n"
    started = time.monotonic()
    reader, writer = await _raw_request(live.url, slow, b"4" + b"x" * 9)
    async with asyncio.timeout(5):
        status = await reader.readline()
    assert status.startswith(b"HTTP/1.1 400"), status
    assert 0.9 < time.monotonic() - started < 4
    writer.close()
    await wait_until(lambda: _true(_handlers() == 0), within=5)


async def test_an_abandoned_long_poll_ends_its_handler_and_session(live: Any, app: web.Application) -> None:
    eio = app[SIO].eio
    _production_heartbeat(app)
    async with aiohttp.ClientSession() as http:
        sids = [await _polling_sid(http, live.url) for _ in range(5)]
    polls = [
        await _raw_request(
            live.url, f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        for sid in sids
    ]
    await wait_until(lambda: _true(_handlers() >= 5), within=5)
    for _reader, writer in polls:
        writer.close()
    # The library would wait ping interval + timeout (45 s) for packets nobody will read.
    await wait_until(lambda: _true(_handlers() == 0), within=4)
    await wait_until(
        lambda: _true(all(sid not in eio.sockets or eio.sockets[sid].closed for sid in sids)), within=4
    )


# --- SIGTERM ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_sigterm_stops_the_process_within_10_s_despite_hung_clients(
    database_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update(
        LIVEDESK_HOST="127.0.0.1",
        LIVEDESK_PORT=str(port),
        LIVEDESK_DATABASE_URL=database_url,
        LIVEDESK_DATA_DIR=str(tmp_path / "data"),
        LIVEDESK_SECRET_KEY="hostile-" + uuid.uuid4().hex,
        LIVEDESK_LOG_LEVEL="warning",
    )
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "livedesk", "serve", env=env, stdout=out, stderr=subprocess.STDOUT
        )
    held: list[Any] = []
    polling = "/socket.io/?EIO=4&transport=polling&sid="
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                assert proc.returncode is None, log.read_text()
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url + "/readyz") as response:
                        return response.status == 200
                return False

            await wait_until(ready, within=30)
            async with http.post(url + "/api/v1/visitors", json={}) as response:
                token = (await response.json())["token"]
            ws, _ = await _raw_shopper(http, url, token)  # a websocket left open
            sids = [await _polling_sid(http, url) for _ in range(5)]
            for sid in sids:  # long polls waiting for packets
                held.append(await _raw_request(url, f"GET {polling}{sid} HTTP/1.1\r\nHost: x\r\n\r\n"))
            for sid in sids[:3]:  # POST bodies that never finish
                head = f"POST {polling}{sid} HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n"
                held.append(await _raw_request(url, head, b"4" + b"x" * 1000))
            head = f"POST {polling}{sids[4]} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n"
            held.append(await _raw_request(url, head, b"4" + b"x" * 65_536))  # oversize, held open
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 20)
            elapsed = time.monotonic() - started
            await ws.close()
        assert proc.returncode is not None, "still running 20 s after SIGTERM"
        assert elapsed < 10, (elapsed, log.read_text()[-3000:])
    finally:
        for _reader, writer in held:
            writer.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
