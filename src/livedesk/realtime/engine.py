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

Everything held for a socket counts against that one bound: the packets waiting, the packet
being written (counted until its write returns, its encoded frame as well as its text), and
what the connection's transport still buffers (``get_write_buffer_size``). The reader pauses
and the bound is judged on that sum, so a never-reading client pins at most the bound, plus
one packet when a lone one is larger than it (``bench/hostile.py`` measures the RSS).

A socket that began on long polling and upgrades gets the same loops once the library's upgrade
handshake (probe PING/PONG, NOOP to end the poll, UPGRADE) is done here: the same bound, write
deadline and drain. This overrides private methods, so python-engineio is pinned exactly
(pyproject.toml) and ``tests/unit/test_engine.py`` and ``tests/unit/test_engine_backpressure.py``
fail if the hook points move.

**Draining** (``drain``, a graceful deploy): the socket stops reading, lets the event being
handled finish and its ack go out, then ends its connection *without* an Engine.IO CLOSE
packet, so every client (browsers and python-socketio alike) takes it for a lost transport and
reconnects, to another replica.
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
# A reader paused for backpressure looks again this often (the transport drains unseen).
_RECHECK_SECONDS = 0.25


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
    upgrading: bool
    closed: bool
    closing: bool
    # Ours. The class is swapped onto a socket the library already built, so these are class
    # defaults that the instance shadows once it writes them.
    _lean = False  # True while this socket's websocket is served by the loops below
    _queued = 0  # bytes of packets waiting in the queue, and of the one being written
    _broken = False  # over its bound or stalled: later packets are dropped, the socket is ending
    _writing_since = 0.0  # loop time the websocket write under way began (0: none)
    _buffered_since = 0.0  # since when the stall sweep has seen the transport holding bytes
    _soft = 0  # the reader pauses while more than this is held (half the bound)
    _resume: asyncio.Future[None] | None = None  # wakes a reader paused for backpressure
    _transport: asyncio.Transport | None = None  # the websocket's connection, to abort it
    _draining = False  # a graceful stop: read nothing more, finish what is under way, end
    _busy = 0  # client packets being handled now (the reader's, or long-polling POSTs')
    _idle: asyncio.Future[None] | None = None  # set when _busy drops to 0 while draining

    # ------------------------------------------------------------------ the queue's bound

    def held(self) -> int:
        """The bytes this socket holds: its queue, the packet being written, and what the
        connection's transport has not written yet."""
        transport = self._transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        return self._queued + buffered

    async def send(self, pkt: Any) -> None:
        """Queue a packet for the client, within the socket's bound (the library's ``send``
        without its log call, plus the bound)."""
        if self._broken or not await self.check_ping_timeout():
            return
        size = packet_size(pkt)
        if self._queued and self.held() + size > self.server.queue_bytes:
            self.break_off("queue_full")
            return
        self._queued += size
        self.queue.put_nowait(pkt)

    async def poll(self) -> list[Any]:
        """A long poll takes what waits."""
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
        log.warning("socket dropped: its client does not read", sid=self.sid, why=why, held_bytes=self.held())
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
        """Whether the websocket write under way has been blocked past the deadline, or the
        transport has held unwritten bytes at every look since then (a write can return while
        its frame still waits in the transport: aiohttp waits only past its own limit)."""
        deadline: float = self.server.stall_seconds
        since = self._writing_since
        if since:
            return now - since > deadline
        transport = self._transport
        if transport is None or not transport.get_write_buffer_size():
            self._buffered_since = 0.0
            return False
        if not self._buffered_since:
            self._buffered_since = now
        return now - self._buffered_since > deadline

    def _blocked(self) -> bool:
        transport = self._transport
        return bool(self._writing_since) or bool(transport and transport.get_write_buffer_size())

    def _wake_reader(self) -> None:
        resume = self._resume
        if resume is not None and not resume.done():
            resume.set_result(None)

    # ------------------------------------------------------------------ draining

    async def drain(self) -> None:
        """End this socket for a graceful stop: nothing more is read from the client, the
        packets being handled finish (their acks are queued), then the socket closes without a
        CLOSE packet and its queue is flushed before the connection ends. The client sees its
        transport go and reconnects (elsewhere: this server refuses new sessions by now)."""
        self._draining = True
        self._wake_reader()
        if self._busy:
            self._idle = asyncio.get_running_loop().create_future()
            await self._idle
        if self.closed or self.closing:
            return
        await self.close(wait=False, abort=True, reason=self.server.reason.SERVER_DISCONNECT)
        # The writer (or a waiting long poll) sends what is queued, then stops; the lean
        # writer then closes the websocket, which ends the reader.
        self.queue.put_nowait(None)

    def _handled(self) -> None:
        self._busy -= 1
        idle = self._idle
        if not self._busy and idle is not None and not idle.done():
            idle.set_result(None)

    async def _receive_counted(self, pkt: Any) -> None:
        self._busy += 1
        try:
            await self.receive(pkt)
        finally:
            self._handled()

    # ------------------------------------------------------------------ websocket loops

    async def _websocket_handler(self, ws: Any) -> None:
        # The driver keeps the request's environ: its transport is what ``break_off`` aborts.
        transport = ws.environ["aiohttp.request"].transport
        if self.connected:
            # An upgrade from long polling: the handshake, then the same loops as a websocket
            # that came first (the library's own loops had no deadline and no drain).
            if not await self._upgrade_handshake(ws):
                return
        else:
            self.connected = True
            self.upgraded = True
        self._transport = transport
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

    async def _upgrade_handshake(self, ws: Any) -> bool:
        """The library's upgrade handshake (probe PING → PONG, a NOOP that ends the pending
        long poll, then UPGRADE); False when the client does not complete it."""
        self.upgrading = True  # the library's polling GETs answer NOOP meanwhile
        try:
            probe = await self._next_packet(ws)
            if probe is None or probe.packet_type != packet.PING or probe.data != "probe":
                return False
            await ws.send(packet.Packet(packet.PONG, data="probe").encode())
            self._queued += _SMALL
            self.queue.put_nowait(packet.Packet(packet.NOOP))  # ends the long poll
            upgrade = await self._next_packet(ws)
            if upgrade is None or upgrade.packet_type != packet.UPGRADE:
                return False
            self.upgraded = True
            return True
        finally:
            self.upgrading = False

    @staticmethod
    async def _next_packet(ws: Any) -> Any:
        try:
            data = await ws.wait()
        except OSError:
            return None
        if data is None:
            return None
        with contextlib.suppress(Exception):  # not an Engine.IO packet: the upgrade failed
            return packet.Packet(encoded_packet=data)
        return None

    async def _read_frames(self, ws: Any) -> None:
        """Hand each frame to Engine.IO until the client goes (aiohttp's ``max_msg_size``,
        set by the driver from ``max_http_buffer_size``, already refuses oversize frames)."""
        self._soft = soft = self.server.queue_bytes // 2
        while not self._draining:
            if self.held() > soft and not (self._broken or self.closed):
                await self._until_drained()
                continue
            try:
                data = await ws.wait()
            except OSError:  # the driver's word for a close or a non-data frame
                return
            if data is None or self._draining:
                return  # a frame read while draining is left, as one still on the wire
            try:
                await self._receive_counted(packet.Packet(encoded_packet=data))
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                return
            except Exception:
                # As the library does: log it and keep the connection.
                log.exception("engine.io receive failed", sid=self.sid)

    async def _until_drained(self) -> None:
        # The writer wakes the reader as packets go out; what the transport still buffers
        # drains with no write to notice it, hence the look again after a while.
        self._resume = asyncio.get_running_loop().create_future()
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_RECHECK_SECONDS):
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
                # Counted until its write returns: its text, then its frame in the transport.
                size = packet_size(pkt)
                if not sending:
                    # The peer is gone. The packet is dropped rather than left queued: a
                    # server-side close waits for the queue to empty.
                    self._queued = max(0, self._queued - size)
                    continue
                frame = pkt.encode()
                del pkt  # the frame is what is written; the packet's text may go now
                self._writing_since = loop.time()
                try:
                    await ws.send(frame)
                except Exception:
                    sending = False
                    await _close_quietly(ws)  # wakes the reader, which ends the socket
                del frame
                self._writing_since = 0.0
                self._queued = max(0, self._queued - size)  # 0 already if dropped meanwhile
                if self._resume is not None and self.held() <= self._soft:
                    self._wake_reader()
        finally:
            self._wake_reader()
            # The close frame may block behind unread data too: the stall sweep sees it.
            self._writing_since = loop.time()
            await _close_quietly(ws)
            self._writing_since = 0.0

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
        self._busy += 1  # a drain waits for these packets' handlers (and acks)
        try:
            for pkt in payload.Payload(encoded_payload=body.decode("utf-8")).packets:
                if self.closed or self._broken:
                    return
                await self.receive(pkt)
        finally:
            self._handled()

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
            if reason == self.server.reason.PING_TIMEOUT and self._blocked():
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
