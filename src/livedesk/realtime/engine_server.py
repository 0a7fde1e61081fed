"""The Engine.IO server's guards for hostile clients: oversize and slow long-polling requests,
abandoned long polls, stalled websocket writes, and a shutdown that does not wait on them.

python-engineio answered a long-polling POST larger than ``max_http_buffer_size`` by closing
the session and waiting for its queue to empty — which a client that never polls again never
lets happen — so the handler hung for good with the unread body in its buffers: 300 such
POSTs held +214 MB, 300 descriptors and 304 connections in CLOSE_WAIT, and SIGTERM then took
70-130 s (aiohttp waits 60 s for hung handlers). Here:

- a POST that declares a body over the limit gets 413 before any of it is read, and one that
  declares none gets 411 (Engine.IO clients always send ``Content-Length``); aiohttp then
  reads and discards what the client still sends for at most its lingering time (10 s);
- a POST body must arrive whole within ``post_seconds``, else 400 ``body_incomplete``
  (``LeanSocket.handle_post_request``);
- a long poll (GET) whose client went away ends at once: aiohttp cancels handlers only when
  ``handler_cancellation`` is on for the whole app, so this endpoint checks its own
  connection while it waits (once a second; long polling is the fallback transport);
- ``break_stalled`` (run every ``stall_check_seconds``) aborts a websocket whose write has been
  blocked for ``stall_seconds``;
- ``stop`` (``app.on_shutdown``, before aiohttp waits for handlers) closes every socket, so
  polls answer and websockets end within seconds of SIGTERM;
- ``drain`` (a graceful deploy, ``realtime/drain.py``) first refuses new sessions (503) and
  lets every socket finish the events it is handling, send their acks and end its connection
  so its client reconnects to another replica (``LeanSocket.drain``).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any

import engineio
from aiohttp import web

from livedesk.kit.http import error_response
from livedesk.kit.logging import get_logger
from livedesk.realtime.engine import REFUSAL, LeanSocket

log = get_logger("livedesk.realtime")

# How often a long poll looks at its connection, and the stall sweep at the websockets.
_POLL_CHECK_SECONDS = 1.0


class LivedeskEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    sockets: dict[str, Any]
    max_http_buffer_size: int
    reason: Any
    # Set by ``configure`` (setup_realtime); these defaults serve a server built elsewhere.
    queue_bytes = 1_048_576
    stall_seconds = 10.0
    post_seconds = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lean_sockets: set[LeanSocket] = set()  # websockets served by LeanSocket's loops
        self.body_reads: set[asyncio.Future[bytes]] = set()  # long-polling POST bodies on the way
        # Connections answered with an error while their body still comes (``_refused``).
        self.refused: weakref.WeakSet[asyncio.Transport] = weakref.WeakSet()
        self.stopping = False
        self.draining = False  # new sessions are refused (503); open ones are being drained
        self._lean_ended: asyncio.Event | None = None  # set by stop(): the last websocket ended

    def lean_socket_ended(self, sock: LeanSocket) -> None:
        self.lean_sockets.discard(sock)
        if not self.lean_sockets and self._lean_ended is not None:
            self._lean_ended.set()

    def configure(self, *, queue_bytes: int, stall_seconds: float, post_seconds: float) -> None:
        self.queue_bytes, self.stall_seconds, self.post_seconds = queue_bytes, stall_seconds, post_seconds

    async def handle_request(self, request: web.Request) -> web.StreamResponse:
        if (self.draining or self.stopping) and ("sid" not in request.query or "Upgrade" in request.headers):
            # A new session (or an upgrade of one) belongs on another replica now.
            return self._refused(request, 503, "shutting_down", "The server is stopping; connect again")
        if request.method == "POST":
            if self.stopping:
                return self._refused(request, 503, "shutting_down", "The server is stopping; connect again")
            length = request.content_length
            if length is None:
                return self._refused(
                    request, 411, "length_required", "A long-polling POST needs a Content-Length"
                )
            if length > self.max_http_buffer_size:
                limit = self.max_http_buffer_size
                return self._refused(
                    request, 413, "payload_too_large", f"Request body too large (limit {limit} bytes)"
                )
            posted: web.StreamResponse = await super().handle_request(request)
            if REFUSAL in request:
                return self._refused(request, *request[REFUSAL])
            return posted
        if request.method == "GET" and "sid" in request.query and "Upgrade" not in request.headers:
            return await self._long_poll(request)
        response: web.StreamResponse = await super().handle_request(request)
        return response

    def _refused(self, request: web.Request, status: int, code: str, message: str) -> web.Response:
        """An error answer to a POST whose body is left unread. aiohttp then reads and drops
        what still comes for up to 10 s (so the client sees the answer, not a reset); shutdown
        closes such connections rather than wait for that."""
        response = error_response(status, code, message)
        response.force_close()  # the unread body is not worth keeping the connection for
        transport = request.transport
        if transport is not None:
            self.refused.add(transport)
            if self.stopping:
                asyncio.get_running_loop().call_later(_POLL_CHECK_SECONDS, transport.close)
        return response

    async def _long_poll(self, request: web.Request) -> web.StreamResponse:
        """The library's long poll, ended as soon as its client has gone (the poll's close of
        the session is the library's own answer to a poll that ends without packets)."""
        poll = asyncio.ensure_future(super().handle_request(request))
        try:
            while True:
                done, _ = await asyncio.wait({poll}, timeout=_POLL_CHECK_SECONDS)
                if done:
                    response: web.StreamResponse = poll.result()
                    return response
                transport = request.transport
                if transport is None or transport.is_closing():
                    poll.cancel()  # the library turns this into "no packets": it closes the session
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await poll
                    return web.Response(status=204)
        finally:
            if not poll.done():  # this handler itself was cancelled (shutdown)
                poll.cancel()

    @property
    def stall_check_seconds(self) -> float:
        """How often ``break_stalled`` runs: every quarter of ``stall_seconds``, at most every
        second."""
        return min(_POLL_CHECK_SECONDS, self.stall_seconds / 4)

    async def break_stalled(self) -> None:
        """Abort websockets whose writes have been blocked past ``stall_seconds``."""
        now = asyncio.get_running_loop().time()
        for sock in [s for s in self.lean_sockets if s.stalled(now)]:
            sock.break_off("write_stalled")

    async def drain(self, within: float) -> int:
        """Refuse new sessions, then end every socket gracefully (``LeanSocket.drain``): the
        events under way finish and their acks go out, the client sees its transport close and
        reconnects elsewhere. Returns how many sockets were still open after ``within``
        seconds (``stop`` aborts those)."""
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        draining = [
            asyncio.ensure_future(sock.drain())
            for sock in list(self.sockets.values())
            if isinstance(sock, LeanSocket) and not (sock.closed or sock.closing)
        ]
        if draining:
            _, late = await asyncio.wait(draining, timeout=within)
            for task in late:
                task.cancel()
        if self.lean_sockets:
            self._lean_ended = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lean_ended.wait(), max(0.0, deadline - loop.time()))
        left = sum(1 for sock in self.sockets.values() if not sock.closed) + len(self.lean_sockets)
        if left:
            log.warning("sockets still open after the drain", sockets=left)
        return left

    async def stop(self, within: float) -> None:
        """Close every socket (a CLOSE packet where it can still be written), then abort the
        websockets still open after ``within`` seconds, and stop the library's service task."""
        self.stopping = True
        for read in list(self.body_reads):
            read.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        closing = [
            asyncio.ensure_future(sock.close(wait=False, reason=self.reason.SERVER_DISCONNECT))
            for sock in list(self.sockets.values())
        ]
        if closing:
            _, late = await asyncio.wait(closing, timeout=within)
            for task in late:
                task.cancel()
        if self.lean_sockets:
            self._lean_ended = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lean_ended.wait(), max(0.0, deadline - loop.time()))
        for sock in list(self.lean_sockets):
            sock.break_off("shutdown")
        for transport in list(self.refused):
            transport.close()
        with contextlib.suppress(Exception):
            await self.shutdown()
