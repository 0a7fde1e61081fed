"""The Engine.IO sockets: lean websocket loops, and a bounded outgoing queue on every socket.

**Lean loops.** python-engineio (4.x, on Python 3.11) reads each websocket frame through
``asyncio.wait_for(asyncio.ensure_future(ws.wait()), 45 s)`` and waits for each outgoing batch
through ``asyncio.wait_for(queue.get(), 45 s)``: every frame makes a task, a timer handle, a
context and a few futures, and they stay alive until that socket's next frame. With thousands
of open sockets those waiting objects are what the garbage collector walks again and again:
at 1,000 chat messages a second over 2,000 sockets the server stopped for 30-130 ms in young
collections, which was most of the fan-out's p99 (``bench/realtime.py``; a gc callback in the
server showed it, and py-spy showed the loop itself was not busy).

``LeanSocket`` runs one reader and one writer coroutine per websocket, each awaiting its next
frame directly. The 45-second timeouts were a second guard against a silent client; the
heartbeat is the first (the server pings every ``ping_interval``; its service task closes a
socket whose pong is ``ping_timeout`` late), and a closed socket here also closes its
websocket, so the reader wakes and the connection is released.

**Backpressure.** The library's outgoing queue has no bound: a client that sends requests and
never reads the answers (600 ``chat.sync`` of 1.45 MB each) pinned 300 MB until it left.
Every socket now counts the bytes waiting in its queue (the packets' text as Python holds it,
``sys.getsizeof``), and:

- a websocket's reader stops reading the client's frames while more than half the bound
  waits, so a client's own requests cannot outrun its reading (a slow reader is slowed, not
  dropped);
- a packet that would take a non-empty queue past ``queue_bytes`` (what others send it: chat,
  board updates) closes the socket: the queue is emptied and the websocket's connection
  aborted at once, so its memory is freed whether or not the client ever reads again;
- a websocket write blocked for ``stall_seconds`` does the same (``engine_server``'s sweep); so
  does a heartbeat timeout that finds the writer blocked (the CLOSE packet could never get out).

A lone packet larger than the bound still goes out when the queue is empty: the bound is on
what waits behind it. Growth per socket is therefore at most the bound, one packet, and
aiohttp's write buffer (64 KiB).

A socket that began on long polling and upgrades keeps the library's websocket handler (the
upgrade handshake is the library's business; livedesk's browser client opens a websocket
first), but its queue is bounded here too. This overrides private methods, so python-engineio
is pinned exactly (pyproject.toml) and ``tests/unit/test_engine.py`` and
``tests/unit/test_engine_backpressure.py`` fail if the hook points move.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from aiohttp import web
from engineio import async_socket, exceptions, packet, payload

from livedesk.kit.logging import get_logger

log = get_logger("livedesk.realtime")

# Where ``handle_post_request`` leaves the answer to a refused POST for the server's handler
# (python-engineio answers whatever its socket returns with 200).
REFUSAL = web.RequestKey("livedesk.engine.refusal", tuple[int, str, str])

# What a packet without text (PING, NOOP, CLOSE, the OPEN handshake's dict) counts as.
_SMALL = 64


def packet_size(pkt: Any) -> int:
    """The bytes a queued packet holds: its text as Python stores it (O(1) for str/bytes)."""
    data = pkt.data
    if isinstance(data, str | bytes):
        return sys.getsizeof(data)
    return _SMALL


class LeanSocket(async_socket.AsyncSocket):  # type: ignore[misc]
    # The library's flags, set in BaseSocket.
    sid: str
    server: Any
    queue: asyncio.Queue[Any]
    connected: bool
    upgraded: bool
    closed: bool
    closing: bool
    # Ours. The class is swapped onto a socket the library already built, so these are class
    # defaults that the instance shadows once it writes them.
    _lean = False  # True while this socket's websocket is served by the loops below
    _queued = 0  # bytes of packets waiting in the queue
    _broken = False  # over its bound or stalled: later packets are dropped, the socket is ending
    _writing_since = 0.0  # loop time the websocket write under way began (0: none)
    _soft = 0  # the reader pauses while more than this waits (half the bound)
    _resume: asyncio.Future[None] | None = None  # wakes a reader paused for backpressure
    _transport: asyncio.Transport | None = None  # the websocket's connection, to abort it

    # ------------------------------------------------------------------ the queue's bound

    async def send(self, pkt: Any) -> None:
        """Queue a packet for the client, within the socket's bound (the library's ``send``
        without its log call, plus the bound)."""
        if self._broken or not await self.check_ping_timeout():
            return
        size = packet_size(pkt)
        queued = self._queued
        if queued and queued + size > self.server.queue_bytes:
            self.break_off("queue_full")
            return
        self._queued = queued + size
        self.queue.put_nowait(pkt)

    async def poll(self) -> list[Any]:
        """A long poll (or the library's writer after an upgrade) takes what waits."""
        packets: list[Any] = await super().poll()
        if packets:
            self._queued = max(0, self._queued - sum(map(packet_size, packets)))
        return packets

    def break_off(self, why: str) -> None:
        """The client is not reading: drop what waits for it, abort its connection and end the
        socket (its disconnect handlers run as for any lost client)."""
        if self._broken:
            return
        self._broken = True
        log.warning(
            "socket dropped: its client does not read", sid=self.sid, why=why, queued_bytes=self._queued
        )
        queue = self.queue
        while not queue.empty():
            queue.get_nowait()
            queue.task_done()
        self._queued = 0
        queue.put_nowait(None)  # a writer or a long poll waiting on the queue ends
        self._wake_reader()
        if self._transport is not None:
            # The websocket's handler sees its connection gone and closes the socket itself.
            self._transport.abort()
        elif not self._lean:
            self.server.start_background_task(
                self.close, wait=False, abort=True, reason=self.server.reason.TRANSPORT_ERROR
            )

    def stalled(self, now: float) -> bool:
        """Whether the websocket write under way has been blocked past the deadline."""
        since = self._writing_since
        return bool(since) and now - since > self.server.stall_seconds

    def _wake_reader(self) -> None:
        resume = self._resume
        if resume is not None and not resume.done():
            resume.set_result(None)

    # ------------------------------------------------------------------ websocket loops

    async def _websocket_handler(self, ws: Any) -> None:
        # The driver keeps the request's environ: its transport is what ``break_off`` aborts.
        self._transport = ws.environ["aiohttp.request"].transport
        if self.connected:
            # An upgrade from long polling: the library's handshake and loops (bounded queue
            # and abort as here; no stall sweep, which needs the lean writer's timestamps).
            try:
                await super()._websocket_handler(ws)
            finally:
                self._transport = None
            return
        self.connected = True
        self.upgraded = True
        self._lean = True
        self.server.lean_sockets.add(self)
        writer = asyncio.ensure_future(self._write_frames(ws))
        try:
            # aiohttp cancels the handler of a dropped connection (its ``handler_cancellation``)
            # and of every connection at shutdown, once, wherever it is waiting. As in the
            # library, the socket is still closed below so its disconnect handlers run; a
            # cancellation that lands on the writer ends it too, closing the websocket.
            with contextlib.suppress(asyncio.CancelledError):
                await self._read_frames(ws)
            self.queue.put_nowait(None)  # the writer's signal to stop
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
        finally:
            self.server.lean_socket_ended(self)
            self._transport = None

    async def _read_frames(self, ws: Any) -> None:
        """Hand each frame to Engine.IO until the client goes (aiohttp's ``max_msg_size``,
        set by the driver from ``max_http_buffer_size``, already refuses oversize frames)."""
        self._soft = soft = self.server.queue_bytes // 2
        while True:
            if self._queued > soft and not self._broken:
                await self._until_drained()
                continue
            try:
                data = await ws.wait()
            except OSError:  # the driver's word for a close or a non-data frame
                return
            if data is None:
                return
            try:
                await self.receive(packet.Packet(encoded_packet=data))
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                return
            except Exception:
                # As the library does: log it and keep the connection.
                log.exception("engine.io receive failed", sid=self.sid)

    async def _until_drained(self) -> None:
        self._resume = asyncio.get_running_loop().create_future()
        try:
            await self._resume
        finally:
            self._resume = None

    async def _write_frames(self, ws: Any) -> None:
        """Send queued packets in order until ``None`` (the socket is done), then close the
        websocket so a reader still waiting on it wakes."""
        queue, sending, loop = self.queue, True, asyncio.get_running_loop()
        try:
            while True:
                pkt = await queue.get()
                queue.task_done()
                if pkt is None:
                    break
                self._queued -= packet_size(pkt)
                if self._resume is not None and self._queued <= self._soft:
                    self._wake_reader()
                if not sending:
                    # The peer is gone. The packet is dropped rather than left queued: a
                    # server-side close waits for the queue to empty.
                    continue
                self._writing_since = loop.time()
                try:
                    await ws.send(pkt.encode())
                except Exception:
                    sending = False
                    await _close_quietly(ws)  # wakes the reader, which ends the socket
                self._writing_since = 0.0
        finally:
            self._writing_since = 0.0
            self._wake_reader()
            await _close_quietly(ws)

    # ------------------------------------------------------------------ long polling

    async def handle_post_request(self, environ: dict[str, Any]) -> None:
        """A long-polling POST: its body must arrive whole within ``post_seconds`` (the library
        reads ``read(length)``, which may return part of it, and waits for ever), and shutdown
        cuts the wait short; packets after the socket ended are not handled. A body that does
        not arrive is refused (``REFUSAL``, which the server's handler answers) and ends the
        session, as an oversize one does in the library."""
        length = int(environ.get("CONTENT_LENGTH", "0"))
        if length > self.server.max_http_buffer_size:
            raise exceptions.ContentTooLongError()
        request = environ["aiohttp.request"]
        reads = self.server.body_reads
        read = asyncio.ensure_future(environ["wsgi.input"].readexactly(length))
        reads.add(read)
        try:
            await asyncio.wait({read}, timeout=self.server.post_seconds)
        finally:
            reads.discard(read)
        if not read.done() or read.cancelled() or read.exception() is not None:
            read.cancel()
            with contextlib.suppress(BaseException):  # retrieved, so never logged as lost
                read.exception()
            request[REFUSAL] = (400, "body_incomplete", "The request body did not arrive in time")
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_ERROR)
            return
        body: bytes = read.result()
        for pkt in payload.Payload(encoded_payload=body.decode("utf-8")).packets:
            if self.closed or self._broken:
                return
            await self.receive(pkt)

    # ------------------------------------------------------------------ closing

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        ours = not (self.closed or self.closing)
        # The library's close waits for the queue to empty, for ever if the client never reads
        # (a long poll nobody makes, a websocket that takes nothing): here that wait is bounded.
        await super().close(wait=False, abort=abort, reason=reason)
        if self._lean and not abort:
            # The server ends this socket (a missed pong, a disconnect, shutdown): the writer
            # sends the queued CLOSE packet, then closes the websocket, which wakes a reader
            # still waiting on a silent client. (An abort comes from the reader itself, or
            # from a client that is closing its websocket anyway.)
            self.queue.put_nowait(None)
            if reason == self.server.reason.PING_TIMEOUT and self._writing_since:
                # No pong, and the last write is still blocked: nothing more will get out.
                self.break_off("ping_timeout")
        if ours and wait and not self._broken:
            try:
                async with asyncio.timeout(self.server.stall_seconds):
                    await self.queue.join()
            except TimeoutError:
                self.break_off("close_stalled")


async def _close_quietly(ws: Any) -> None:
    with contextlib.suppress(Exception):  # a connection already broken has nothing to close
        await ws.close()


def serve_lean(engine_socket: Any) -> None:
    """Give a new Engine.IO socket the lean websocket loops and the bounded queue (called as
    it connects, before its transport starts)."""
    if type(engine_socket) is async_socket.AsyncSocket:
        engine_socket.__class__ = LeanSocket
        # The library queued the OPEN packet (its data a dict) before this call: count it.
        queue = getattr(engine_socket, "queue", None)
        engine_socket._queued = queue.qsize() * _SMALL if queue is not None else 0
