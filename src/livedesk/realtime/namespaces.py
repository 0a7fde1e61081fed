"""The two Socket.IO namespaces: ``/shopper`` (visitor token) and ``/staff`` (login session).

They authenticate at connect, keep who-is-behind-this-sid, and dispatch every other event to
the capability that declared it (the table ``livedesk/wiring/realtime.py`` hands
``setup_realtime``). No rules live here.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import socketio
from aiohttp import web

from livedesk.identity import (
    SESSION_COOKIE,
    TOKENS,
    authenticate_shopper,
    current_staff,
    session_policy,
    sessions,
)
from livedesk.kit.background import BACKGROUND
from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.db import is_unavailable
from livedesk.kit.errors import AppError
from livedesk.kit.http import DATABASE_UNAVAILABLE, client_ip
from livedesk.kit.logging import get_logger
from livedesk.realtime import rooms
from livedesk.realtime.hooks import Hooks
from livedesk.realtime.protocol import Ack, EventContext, EventSpec, dispatch, fail
from livedesk.realtime.socket_caps import SocketCaps

log = get_logger("livedesk.realtime")

# The login sessions behind a process's staff sockets are checked together this often, so
# logout, expiry and disabling reach open sockets (idle ones too) within this time.
STAFF_RECHECK_SECONDS = 30.0
# Sessions per query: small enough that each query's rows are a short turn of the event loop.
_RECHECK_CHUNK = 200
_LIFECYCLE = frozenset({"connect", "disconnect"})
K = TypeVar("K")


def _refused(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    """A refusal the client can read: the message, and {code, message} as its data."""
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code, "message": message})


def _request(environ: dict[str, Any]) -> web.Request:
    request: web.Request = environ["aiohttp.request"]
    return request


class LivedeskNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(
        self, namespace: str, app: web.Application, specs: dict[str, EventSpec[Any]], hooks: Hooks
    ) -> None:
        super().__init__(namespace)
        self.app = app
        self.specs = specs
        self.hooks = hooks
        self.contexts: dict[str, EventContext] = {}

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in _LIFECYCLE and self.server.manager.is_connected(args[0], self.namespace):
            # python-socketio hands a client's event named "connect" or "disconnect" to the
            # same method as the real ones; a real one comes while the socket is still
            # connecting or already disconnecting, never while it is connected.
            return fail("unknown_event", f"'{event}' is reserved and cannot be sent")
        if event == "connect":
            sid, environ, auth = [*args, None, None, None][:3]
            try:
                return await self.handle_connect(sid, environ, auth)
            except socketio.exceptions.ConnectionRefusedError:
                raise
            except Exception as exc:
                # Anything else would leave the client waiting for an answer that never
                # comes (python-socketio only logs it): refuse, saying why.
                self.contexts.pop(sid, None)
                if is_unavailable(exc):
                    log.warning("connect refused: database unavailable", namespace=self.namespace)
                    raise _refused(*DATABASE_UNAVAILABLE) from None
                log.exception("connect failed", namespace=self.namespace)
                raise _refused("internal", "Internal server error") from None
        if event == "disconnect":
            await self.handle_disconnect(args[0])
            return None
        sid = args[0]
        ctx = self.contexts.get(sid)
        if ctx is None:
            return fail("unauthenticated", "Not connected")
        refused = await self.recheck(ctx)
        if refused is not None:
            return refused
        return await dispatch(self.specs, ctx, event, tuple(args[1:]))

    async def handle_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        raise NotImplementedError

    async def handle_disconnect(self, sid: str) -> None:
        ctx = self.contexts.pop(sid, None)
        # At shutdown the process registry forgets all of this process's sockets at once;
        # the per-socket hooks would only race the closing database.
        if ctx is not None and not self.app[BACKGROUND].closing:
            for hook in self.hooks.on_disconnect:
                try:
                    await hook(ctx)
                except Exception:
                    log.exception("disconnect hook failed", namespace=self.namespace)

    async def recheck(self, ctx: EventContext) -> Ack | None:
        return None

    async def _connected(self, ctx: EventContext) -> None:
        self.contexts[ctx.sid] = ctx
        for hook in self.hooks.on_connect:
            await hook(ctx)


class ShopperNamespace(LivedeskNamespace):
    def __init__(
        self, namespace: str, app: web.Application, specs: dict[str, EventSpec[Any]], hooks: Hooks
    ) -> None:
        super().__init__(namespace, app, specs, hooks)
        # Open sockets per shopper and per client address (the caps in ``_admit``), across
        # the cluster when Redis is configured (realtime/socket_caps.py).
        settings = app[SETTINGS]
        self.caps = SocketCaps(settings.redis_url, settings.redis_channel, uuid.uuid4().hex)

    async def handle_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        address = client_ip(_request(environ))
        settings = self.app[SETTINGS]
        # Visitor tokens are free, so connections are paid for by the address (shared with
        # the other processes through the rate-limit storage).
        try:
            await self.app[RATE_LIMITS].hit(
                settings.shopper_connect_rate_limit,
                "socket.connect",
                address,
                message="Too many connections from your network; wait a moment",
            )
        except AppError as exc:
            raise _refused(exc.code, exc.message) from None
        token = auth.get("token") if isinstance(auth, dict) else None
        # The same rule as every REST path (``identity.shoppers.authenticate_shopper``): a token
        # outlives its profile when the shopper is erased (refused), or merged into another
        # profile (followed only when the merge was proven).
        try:
            async with self.app[DB].read() as session:
                actor = await authenticate_shopper(session, self.app[TOKENS], token)
        except AppError as exc:
            raise _refused(exc.code, exc.message) from None
        ctx = EventContext(app=self.app, sid=sid, namespace=self.namespace, shopper=actor)
        ctx.address = address
        await self._admit(ctx)
        try:
            # The connect hooks (the page's connection row, in a group commit) before the rooms:
            # python-socketio answers the connect only once this returns, and a socket already
            # in its rooms would hear their events for all that time before its answer.
            await self._connected(ctx)
            if actor.consultation_id is not None:
                # A booked call's token hears of that consultation only.
                await self.enter_room(sid, rooms.consultation_shopper(actor.consultation_id))
            else:
                await self.enter_room(sid, rooms.shopper(actor.shopper_id))
        except BaseException:
            await self._release(ctx)
            raise

    async def _admit(self, ctx: EventContext) -> None:
        """Count the socket against its shopper's and its address's caps, or refuse it."""
        settings = self.app[SETTINGS]
        assert ctx.shopper is not None
        per_token, per_address = settings.shopper_sockets_per_token, settings.shopper_sockets_per_address
        over = await self.caps.admit(ctx.sid, ctx.shopper.shopper_id, ctx.address, per_token, per_address)
        if over == "shopper":
            raise _refused("too_many_sockets", f"At most {per_token} pages may be open at once; close one")
        if over == "address":
            raise _refused(
                "too_many_sockets_address", "Too many open connections from your network; close a page"
            )
        ctx.admitted = True

    async def _release(self, ctx: EventContext) -> None:
        admitted, ctx.admitted = ctx.admitted, False
        if not admitted or ctx.shopper is None:
            return
        await self.caps.release(ctx.sid, ctx.shopper.shopper_id, ctx.address)

    async def handle_disconnect(self, sid: str) -> None:
        ctx = self.contexts.get(sid)
        if ctx is not None:
            await self._release(ctx)
        await super().handle_disconnect(sid)


class StaffNamespace(LivedeskNamespace):
    async def handle_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        try:
            principal = await current_staff(_request(environ))
        except AppError as exc:
            raise _refused(exc.code, exc.message) from None
        if principal is None:
            raise _refused("unauthenticated", "Sign in as staff first")
        ctx = EventContext(app=self.app, sid=sid, namespace=self.namespace, staff=principal)
        ctx.session_token = _request(environ).cookies.get(SESSION_COOKIE, "")
        await self.enter_room(sid, rooms.staff(principal.staff_id))
        await self._connected(ctx)

    async def recheck(self, ctx: EventContext) -> Ack | None:
        # No database here: ``recheck_sessions`` decides for every socket of the process at
        # once. (One read per socket's event once its interval had passed made 1,000 reads
        # and writes in a burst when 1,000 advisors came back to work together, and their
        # thread hops stalled chat sends for a second; an idle socket was never checked.)
        if ctx.ended:
            return fail("session_expired", "Your session has ended; please sign in again")
        ctx.used = True
        return None

    async def recheck_sessions(self) -> int:
        """Check the login session behind every staff socket of this process, a few hundred
        sessions per query, and close the sockets whose session has ended (logged out, expired,
        account disabled); the others get their principal refreshed, and sessions used since
        the last check their last-seen time. Returns how many sockets were closed."""
        sockets: dict[str, list[EventContext]] = {}
        used: set[str] = set()
        for ctx in list(self.contexts.values()):
            if ctx.ended:
                continue
            token = ctx.session_token
            sockets.setdefault(token, []).append(ctx)
            if ctx.used:
                ctx.used = False
                used.add(token)
        tokens, policy, closed = list(sockets), session_policy(self.app), 0
        for start in range(0, len(tokens), _RECHECK_CHUNK):
            chunk = tokens[start : start + _RECHECK_CHUNK]
            async with self.app[DB].read() as session:
                found = await sessions.check_open(session, chunk, used, policy)
            if found.ended or found.touch:
                try:
                    async with self.app[DB].transaction() as session:
                        await sessions.write_checked(session, found)
                except Exception as exc:  # the next round (or a request) writes it instead
                    log.warning("staff sessions not written", error=repr(exc))
            for token in chunk:
                principal = found.valid.get(token)
                for ctx in sockets[token]:
                    if principal is not None:
                        ctx.staff = principal
                        continue
                    ctx.ended = True  # events until the close get session_expired
                    closed += 1
                    await self.disconnect(ctx.sid)
        return closed
