"""The Socket.IO server on the aiohttp app: origin policy, fan-out through Redis when
several processes run, the two namespaces, and this process's heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import socketio
from aiohttp import web

from livedesk.kit.background import BACKGROUND
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.periodic import Periodic
from livedesk.realtime import namespaces, rooms
from livedesk.realtime.drain import DRAIN
from livedesk.realtime.emit import SIO, sink_for
from livedesk.realtime.engine import serve_lean
from livedesk.realtime.engine_server import LivedeskEngineServer
from livedesk.realtime.fanout import LocalFanout
from livedesk.realtime.namespaces import ShopperNamespace, StaffNamespace
from livedesk.realtime.process import PROCESS, ProcessRegistry
from livedesk.realtime.redis_fanout import RedisFanout
from livedesk.realtime.socket_caps import REFRESH_SECONDS
from livedesk.realtime.table import EventTable
from livedesk.realtime.wire import OrjsonCodec, WirePacket
from livedesk.settings import Settings

STAFF_SOCKETS = web.AppKey("staff_sockets", StaffNamespace)
SHOPPER_SOCKETS = web.AppKey("shopper_sockets", ShopperNamespace)
EVENT_TABLE = web.AppKey("event_table", EventTable)


def _origin_policy(settings: Settings) -> Any:
    allowed = {o.rstrip("/") for o in settings.allowed_origins}
    if settings.public_url:
        allowed.add(settings.public_url)

    def check(origin: str | None, environ: dict[str, Any]) -> bool:
        # Clients that send no Origin (server-side tools) are not browsers and are let
        # through to token/session authentication; browsers must come from our own origin
        # or an allowed one.
        if not origin:
            return True
        if origin.rstrip("/") in allowed:
            return True
        parts = urlsplit(origin)
        return parts.scheme in {"http", "https"} and parts.netloc == environ.get("HTTP_HOST")

    return check


# How long shutdown waits for sockets to close before it aborts their connections.
STOP_SECONDS = 3.0


class LivedeskSocketServer(socketio.AsyncServer):  # type: ignore[misc]
    eio: LivedeskEngineServer

    def _engineio_server_class(self) -> type[LivedeskEngineServer]:
        # The guards against hostile clients (realtime/engine_server.py).
        return LivedeskEngineServer

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        # Engine.IO has no setting for its socket class; this is the first call that sees a
        # new socket, before its websocket starts (see realtime/engine.py).
        serve_lean(self.eio.sockets.get(eio_sid))
        return await super()._handle_eio_connect(eio_sid, environ)


def setup_realtime(app: web.Application, table: EventTable) -> None:
    """Attach the Socket.IO server, dispatching the events of ``table`` (built by the
    composition root: ``livedesk/wiring/realtime.py``)."""
    settings = app[SETTINGS]
    manager = (
        RedisFanout(settings.redis_url, channel=settings.redis_channel)
        if settings.redis_url
        else LocalFanout()
    )
    sio = LivedeskSocketServer(
        async_mode="aiohttp",
        client_manager=manager,
        serializer=WirePacket,
        json=OrjsonCodec,
        cors_allowed_origins=_origin_policy(settings),
        # One client's events are handled in the order sent (signalling and chat need it);
        # different clients still run concurrently.
        async_handlers=False,
        max_http_buffer_size=1_000_000,
        # The heartbeat is also what closes a silent client's websocket (realtime/engine.py).
        ping_interval=settings.socket_ping_interval_seconds,
        ping_timeout=settings.socket_ping_timeout_seconds,
        logger=False,
        engineio_logger=False,
    )
    sio.eio.configure(
        queue_bytes=settings.socket_queue_bytes,
        stall_seconds=settings.socket_write_stall_seconds,
        post_seconds=settings.socket_post_seconds,
    )
    sio.attach(app)
    app[SIO] = sio
    app[EVENT_TABLE] = table
    shoppers = ShopperNamespace(rooms.SHOPPER_NS, app, table.shopper, table.hooks)
    sio.register_namespace(shoppers)
    app[SHOPPER_SOCKETS] = shoppers
    staff = StaffNamespace(rooms.STAFF_NS, app, table.staff, table.hooks)
    sio.register_namespace(staff)
    app[STAFF_SOCKETS] = staff
    app.cleanup_ctx.append(_process)
    app.on_shutdown.append(_stop_sockets)


async def _stop_sockets(app: web.Application) -> None:
    """Before aiohttp waits for open handlers (60 s, then cancels them): end every socket, so
    long polls answer and websockets close now."""
    await app[SIO].eio.stop(STOP_SECONDS)


async def _process(app: web.Application) -> AsyncIterator[None]:
    sio = app[SIO]
    # Events services queue on a transaction go out through this server once it commits.
    app[DB].event_sink = sink_for(sio)
    if app[SETTINGS].redis_url and not sio.manager_initialized:
        # Listen on Redis from the start, not from the first client's connection: events
        # other processes send in between would otherwise be lost.
        sio.manager_initialized = True
        sio.manager.initialize()
    table = app[EVENT_TABLE]
    staff, shoppers = app[STAFF_SOCKETS], app[SHOPPER_SOCKETS]

    def open_sockets() -> tuple[dict[str, uuid.UUID], dict[str, uuid.UUID]]:
        return (
            {sid: ctx.staff.staff_id for sid, ctx in list(staff.contexts.items()) if ctx.staff is not None},
            {
                sid: ctx.shopper.shopper_id
                for sid, ctx in list(shoppers.contexts.items())
                if ctx.shopper is not None
            },
        )

    process = ProcessRegistry(app[DB], table.on_staff_gone(app), table.on_shoppers_gone(app), open_sockets)
    app[PROCESS] = process
    await process.start()
    # The database or Redis may be away for a round: it is logged, and the next one tries again.
    recheck = app[STAFF_SOCKETS].recheck_sessions
    # Read before each wait, as the loop this replaced did (the browser tests shorten it).
    every = lambda: namespaces.STAFF_RECHECK_SECONDS  # noqa: E731
    Periodic("staff.sessions", recheck, every=every, quiet=True).spawn(app[BACKGROUND])
    Periodic("engine.stalls", sio.eio.break_stalled, every=sio.eio.stall_check_seconds).spawn(app[BACKGROUND])
    caps = app[SHOPPER_SOCKETS].caps
    if caps.shared:
        refresh = Periodic("socket-caps.refresh", caps.refresh, every=REFRESH_SECONDS, quiet=True)
        refresh.spawn(app[BACKGROUND])
    yield
    drained = app.get(DRAIN)
    if drained is not None and drained.draining:
        # A graceful deploy: the consoles told to reconnect keep the advisor present through
        # the grace (realtime/drain.py).
        await process.stop(drained.handed_over, app[SETTINGS].presence_grace_seconds)
    else:
        await process.stop()
    with contextlib.suppress(Exception):  # Redis may be gone; its entries expire by themselves
        await caps.close()
    await _close_fanout(sio)


async def _close_fanout(sio: socketio.AsyncServer) -> None:
    """Stop listening on Redis and close its connections (python-socketio's manager has no
    close of its own; an app stopped without this leaves its sockets to the garbage collector)."""
    manager = sio.manager
    listener = getattr(manager, "thread", None)
    if isinstance(listener, asyncio.Task):
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await listener
    for connection in (getattr(manager, "pubsub", None), getattr(manager, "redis", None)):
        if connection is not None:
            with contextlib.suppress(Exception):  # closing at shutdown; Redis may be gone
                await connection.aclose()
