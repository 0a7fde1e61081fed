"""The Engine.IO websocket under Socket.IO, without a task and a timer per frame.

python-engineio (4.x, on Python 3.11) reads each websocket frame through
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

A socket that began on long polling and upgrades keeps the library's handler: the upgrade
handshake is the library's business, and livedesk's browser client opens a websocket first.
This overrides a private method, so python-engineio is pinned exactly (pyproject.toml) and
``tests/unit/test_engine.py`` fails if the hook point moves.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from engineio import async_socket, exceptions, packet

from livedesk.kit.logging import get_logger

log = get_logger("livedesk.realtime")


class LeanSocket(async_socket.AsyncSocket):  # type: ignore[misc]
    connected: bool  # the library's flags, set in BaseSocket
    upgraded: bool
    _lean = False  # True while this socket's websocket is served by the loops below

    async def _websocket_handler(self, ws: Any) -> None:
        if self.connected:
            # An upgrade from long polling: the library's handshake and loops.
            await super()._websocket_handler(ws)
            return
        self.connected = True
        self.upgraded = True
        self._lean = True
        writer = asyncio.ensure_future(self._write_frames(ws))
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

    async def _read_frames(self, ws: Any) -> None:
        """Hand each frame to Engine.IO until the client goes (aiohttp's ``max_msg_size``,
        set by the driver from ``max_http_buffer_size``, already refuses oversize frames)."""
        while True:
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

    async def _write_frames(self, ws: Any) -> None:
        """Send queued packets in order until ``None`` (the socket is done), then close the
        websocket so a reader still waiting on it wakes."""
        queue, sending = self.queue, True
        try:
            while True:
                pkt = await queue.get()
                queue.task_done()
                if pkt is None:
                    break
                if not sending:
                    # The peer is gone. The packet is dropped rather than left queued: a
                    # server-side close waits for the queue to empty.
                    continue
                try:
                    await ws.send(pkt.encode())
                except Exception:
                    sending = False
                    await _close_quietly(ws)  # wakes the reader, which ends the socket
        finally:
            await _close_quietly(ws)

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        await super().close(wait=wait, abort=abort, reason=reason)
        if self._lean and not abort:
            # The server ends this socket (a missed pong, a disconnect, shutdown): the writer
            # sends the queued CLOSE packet, then closes the websocket, which wakes a reader
            # still waiting on a silent client. (An abort comes from the reader itself, or
            # from a client that is closing its websocket anyway.)
            self.queue.put_nowait(None)


async def _close_quietly(ws: Any) -> None:
    with contextlib.suppress(Exception):  # a connection already broken has nothing to close
        await ws.close()


def serve_lean(engine_socket: Any) -> None:
    """Give a new Engine.IO socket the lean websocket loops (called as it connects, before
    its transport starts)."""
    if type(engine_socket) is async_socket.AsyncSocket:
        engine_socket.__class__ = LeanSocket
