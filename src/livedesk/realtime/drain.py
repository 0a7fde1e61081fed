"""Graceful deploys: what SIGTERM does to a ``livedesk serve`` process.

aiohttp's own SIGTERM handling stops listening at once and then closes every socket, so a
rolling restart looked like a crash to the people on that replica: acks of messages being
stored were lost (the client re-sent them), and an advisor went offline until her console found
the other replica. Here SIGTERM drains the replica first, in this order:

1. ``/readyz`` answers 503 ``draining`` and new Engine.IO sessions get 503 ``shutting_down``,
   so a load balancer stops sending (and a client that tries this replica again goes on to the
   next); for ``LIVEDESK_DRAIN_DELAY_SECONDS`` REST requests are still served while it notices.
2. Every socket stops reading, finishes the event it is handling, sends the ack, and its
   connection ends without an Engine.IO CLOSE packet (``LeanSocket.drain``): clients take it
   for a lost transport and reconnect, to the other replica, where chat re-sync and the
   outbox pick up as after any reconnect. At most ``DRAIN_SOCKETS_SECONDS``.
3. Presence is handed over: the connection rows of the advisors' consoles that were open at
   the drain stay behind the process for the presence grace (``ProcessRegistry.stop``), so a
   console that reconnects to the other replica within it never shows the advisor offline;
   the other processes' sweep removes the rows once the grace is over. Tabs already closed
   before the SIGTERM are not handed over: they go at once, as before.
4. aiohttp's shutdown (listening socket, whatever socket is left, handlers, cleanup).

The whole stop stays within 10 s even with hung polls (test_graceful_deploy.py, and
test_hostile_clients.py's SIGTERM test). A second SIGTERM, or SIGINT, stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.web_runner import GracefulExit

from livedesk.kit.context import SETTINGS
from livedesk.kit.logging import get_logger
from livedesk.realtime import rooms
from livedesk.realtime.emit import SIO

log = get_logger("livedesk.drain")

# How long the sockets have to finish their events and go (then they are aborted).
DRAIN_SOCKETS_SECONDS = 4.0
# How long aiohttp then waits for request handlers still running (its default is 60 s).
HANDLERS_SECONDS = 2.0


@dataclass
class DrainState:
    draining: bool = False
    # Socket.IO sids of the staff consoles open when the drain began (their presence rows are
    # handed over rather than removed).
    handed_over: set[str] = field(default_factory=set)


DRAIN = web.AppKey("drain", DrainState)


def is_draining(app: web.Application) -> bool:
    state = app.get(DRAIN)
    return state is not None and state.draining


def run_app(app: web.Application) -> None:
    """``web.run_app`` with SIGTERM draining the replica first (the module's docstring)."""
    settings = app[SETTINGS]
    app[DRAIN] = DrainState()
    app.on_startup.append(_on_sigterm_drain)
    web.run_app(app, host=settings.host, port=settings.port, print=None, shutdown_timeout=HANDLERS_SECONDS)


async def _on_sigterm_drain(app: web.Application) -> None:
    # aiohttp installed its handlers (raise GracefulExit) before the app's startup: SIGTERM's
    # is replaced here; SIGINT keeps stopping at once.
    loop = asyncio.get_running_loop()
    started: list[asyncio.Task[None]] = []

    def on_sigterm() -> None:
        if started:  # a second SIGTERM: no more waiting
            _exit()
            return
        log.info("SIGTERM: draining this replica")
        started.append(asyncio.ensure_future(_drain_then_exit(app)))

    with contextlib.suppress(NotImplementedError):  # no signal handlers on this platform
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)


def _exit() -> None:
    raise GracefulExit()


async def _drain_then_exit(app: web.Application) -> None:
    try:
        await drain(app)
    except Exception:  # the stop itself must still happen
        log.exception("drain failed")
    asyncio.get_running_loop().call_soon(_exit)


async def drain(app: web.Application, sockets_within: float = DRAIN_SOCKETS_SECONDS) -> None:
    """Steps 1-3 of the module's docstring (step 4 is aiohttp's)."""
    state = app.get(DRAIN)
    if state is None:
        state = app[DRAIN] = DrainState()
    state.draining = True
    sio = app[SIO]
    sio.eio.draining = True  # new Engine.IO sessions: 503
    delay = app[SETTINGS].drain_delay_seconds
    if delay:
        # The load balancer's readiness probe sees 503 meanwhile; REST requests are served.
        await asyncio.sleep(delay)
    state.handed_over = _staff_sids(sio)
    left = await sio.eio.drain(sockets_within)
    log.info("replica drained", staff_consoles=len(state.handed_over), sockets_left=left)


def _staff_sids(sio: Any) -> set[str]:
    handler = sio.namespace_handlers.get(rooms.STAFF_NS)
    contexts = getattr(handler, "contexts", {})
    return set(contexts)
