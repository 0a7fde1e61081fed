"""The two Socket.IO namespaces: ``/shopper`` (visitor token) and ``/staff`` (login session).

They authenticate at connect, keep who-is-behind-this-sid, and dispatch every other event to
the capability that declared it (see ``registry.py``). No rules live here.
"""

from __future__ import annotations

import time
from typing import Any

import socketio
from aiohttp import web

from livedesk.customers.timeline import live_shopper_id
from livedesk.kit.background import BACKGROUND
from livedesk.kit.context import DB
from livedesk.kit.db import is_unavailable
from livedesk.kit.errors import AppError, NotFound
from livedesk.kit.http import DATABASE_UNAVAILABLE
from livedesk.kit.logging import get_logger
from livedesk.realtime import rooms
from livedesk.realtime.hooks import Hooks
from livedesk.realtime.protocol import Ack, EventContext, EventSpec, Shopper, dispatch, fail
from livedesk.staff import sessions
from livedesk.staff.auth import SESSION_COOKIE, current_staff, session_policy
from livedesk.visitors.service import TOKENS

log = get_logger("livedesk.realtime")

# A staff socket re-checks its login session this often, so logout and disabling an
# account reach open sockets too.
STAFF_RECHECK_SECONDS = 30.0
_LIFECYCLE = frozenset({"connect", "disconnect"})


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
    async def handle_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            claims = self.app[TOKENS].verify(token)
        except AppError as exc:
            raise _refused(exc.code, exc.message) from None
        # A token outlives its profile when the shopper is erased, or merged into another
        # profile: refuse the first, follow the second (the survivor's rooms and data).
        async with self.app[DB].read() as session:
            try:
                shopper_id = await live_shopper_id(session, claims.shopper_id, lock=False)
            except NotFound:
                raise _refused("unknown_shopper", "This visitor is no longer known; start again") from None
        ctx = EventContext(
            app=self.app,
            sid=sid,
            namespace=self.namespace,
            shopper=Shopper(shopper_id=shopper_id, visitor_id=claims.visitor_id),
        )
        await self.enter_room(sid, rooms.shopper(shopper_id))
        await self._connected(ctx)


class StaffNamespace(LivedeskNamespace):
    async def handle_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        try:
            principal = await current_staff(_request(environ))
        except AppError as exc:
            raise _refused(exc.code, exc.message) from None
        if principal is None:
            raise _refused("unauthenticated", "Sign in as staff first")
        ctx = EventContext(app=self.app, sid=sid, namespace=self.namespace, staff=principal)
        ctx.extra["checked_at"] = time.monotonic()
        ctx.extra["session_token"] = _request(environ).cookies.get(SESSION_COOKIE, "")
        await self.enter_room(sid, rooms.staff(principal.staff_id))
        await self._connected(ctx)

    async def recheck(self, ctx: EventContext) -> Ack | None:
        if time.monotonic() - ctx.extra["checked_at"] < STAFF_RECHECK_SECONDS:
            return None
        token, policy = ctx.extra["session_token"], session_policy(self.app)
        # A read decides; what it would change (refresh the session's last-seen time, delete
        # an expired one) is written after, without holding up this event: on SQLite that
        # write waits for the lock every chat send takes.
        async with self.app[DB].read() as session:
            result = await sessions.authenticate(session, token, policy)
            changes = bool(session.dirty or session.deleted)
        if changes:
            self.app[BACKGROUND].spawn(self._write_session(token), name="staff.session_write")
        if not isinstance(result, sessions.Principal):
            # After the ack, which would otherwise never reach a socket already closed.
            self.app[BACKGROUND].spawn(self.disconnect(ctx.sid), name="staff.session_ended")
            return fail("session_expired", "Your session has ended; please sign in again")
        ctx.staff = result
        ctx.extra["checked_at"] = time.monotonic()
        return None

    async def _write_session(self, token: str) -> None:
        try:
            async with self.app[DB].transaction() as session:
                await sessions.authenticate(session, token, session_policy(self.app))
        except Exception as exc:  # the next recheck or request writes it instead
            log.warning("staff session not refreshed", error=repr(exc))
