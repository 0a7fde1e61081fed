"""The Socket.IO contract: typed events, acks that always answer, and per-event specs.

Every client→server event answers through its ack with ``{"ok": true, "data": …}`` or
``{"ok": false, "error": {"code", "message"}}`` — malformed, oversize, unknown and
unauthorised events included. Capabilities declare their events as ``EventSpec``s; the
namespaces only dispatch.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from livedesk.identity import Actor, Principal, ShopperActor
from livedesk.kit import inputs
from livedesk.kit.db import is_unavailable
from livedesk.kit.errors import AppError
from livedesk.kit.http import DATABASE_UNAVAILABLE
from livedesk.kit.logging import get_logger
from livedesk.realtime.timing import EVENT_TIMER
from livedesk.realtime.wire import UNDECODABLE, encoded_size

if TYPE_CHECKING:
    from aiohttp import web

log = get_logger("livedesk.realtime")

# Larger payloads are refused with an error ack (engine.io itself allows more, so the
# client hears why instead of being disconnected).
MAX_EVENT_BYTES = 64 * 1024

Ack = dict[str, Any]


class EventModel(inputs.BoundedInput):
    """Base for event payloads: unknown fields are an error; integers and dates have default
    bounds (``kit/inputs.BoundedInput``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class NoPayload(EventModel):
    pass


# The shopper behind a socket, from their signed visitor token (``identity/actors.py``).
Shopper = ShopperActor


S = TypeVar("S")


@dataclass(frozen=True, eq=False)
class ConnectionKey(Generic[S]):
    """A capability's own state on one connection (chat's typing relays), typed the way
    aiohttp's ``AppKey`` types app state; made by ``factory`` on first use, gone with the
    connection."""

    name: str
    factory: Callable[[], S]


@dataclass
class EventContext:
    """One connection as the handlers see it: who it is (``actor``) and what the transport
    keeps for it."""

    app: web.Application
    sid: str
    namespace: str
    staff: Principal | None = None
    shopper: Shopper | None = None
    # The client's address (behind the trusted proxies), for per-address budgets.
    address: str = ""
    # A shopper socket counted by the socket caps (released once at disconnect).
    admitted: bool = False
    # A staff socket: its session cookie, whether an event used it since the last recheck,
    # and whether the session has ended (its events then answer session_expired).
    session_token: str = ""
    used: bool = False
    ended: bool = False
    _state: dict[ConnectionKey[Any], Any] = field(default_factory=dict)

    def state(self, key: ConnectionKey[S]) -> S:
        """This connection's value for a capability's key, made on first use."""
        if key not in self._state:
            self._state[key] = key.factory()
        value: S = self._state[key]
        return value

    def require_staff(self) -> Principal:
        if self.staff is None:
            raise AppError("Only staff may do this", code="forbidden")
        return self.staff

    @property
    def actor(self) -> Actor:
        """Who is acting on this connection, for the services (which never see the socket)."""
        return self.shopper if self.shopper is not None else self.require_staff()

    def require_shopper(self) -> Shopper:
        if self.shopper is None:
            raise AppError("Only the shopper may do this", code="forbidden")
        return self.shopper


P = TypeVar("P", bound=EventModel)
Handler = Callable[[EventContext, P], Awaitable[Any]]


@dataclass(frozen=True)
class EventSpec(Generic[P]):
    name: str
    payload: type[P]
    handler: Handler[P]


def ok(data: Any = None) -> Ack:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return {"ok": True, "data": data}


def fail(code: str, message: str, details: Any = None) -> Ack:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"ok": False, "error": error}


def _payload_size(args: tuple[Any, ...]) -> int | None:
    """The payload's size as JSON, or None when JSON cannot hold it (a lone surrogate, an
    integer beyond 64 bits, nesting deeper than the encoder goes): the document check below
    names what it is."""
    try:
        return encoded_size(args)
    except (TypeError, ValueError):
        return None


def _invalid(field: str, message: str) -> Ack:
    return fail("validation_failed", f"field '{field}': {message}", [{"field": field, "message": message}])


async def dispatch(
    specs: dict[str, EventSpec[Any]], ctx: EventContext, event: str, args: tuple[Any, ...]
) -> Ack:
    """Run one client event: look it up, check size and shape, call the handler, and turn
    whatever happens into an ack. Its handling time goes to the metrics endpoint."""
    started = time.perf_counter()
    try:
        return await _dispatch(specs, ctx, event, args)
    finally:
        timer = ctx.app.get(EVENT_TIMER)
        if timer is not None:
            # Unknown names are one label, so clients cannot grow the metric without bound.
            name = event if event in specs else "(unknown)"
            timer.observe(ctx.namespace, name, time.perf_counter() - started)


async def _dispatch(
    specs: dict[str, EventSpec[Any]], ctx: EventContext, event: str, args: tuple[Any, ...]
) -> Ack:
    if event == UNDECODABLE:
        # A packet with an ack id that could not be read (realtime/wire.py): say why.
        return fail("bad_packet", f"The event could not be read: {args[0] if args else ''}")
    spec = specs.get(event)
    if spec is None:
        if inputs.text_problem(event):
            # Echoing the name back would make the ack itself unencodable.
            return fail("unknown_event", f"Unknown event on {ctx.namespace}: its name is not valid text")
        return fail("unknown_event", f"Unknown event '{event}' on {ctx.namespace}")
    if len(args) > 1:
        return fail("bad_payload", "Send one payload object per event")
    size = _payload_size(args)
    if size is not None and size > MAX_EVENT_BYTES:
        return fail("payload_too_large", f"Event payload larger than {MAX_EVENT_BYTES} bytes")
    raw = args[0] if args else {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return fail("bad_payload", "The payload must be a JSON object")
    try:
        inputs.check_document(raw)
    except inputs.BadValue as exc:
        return _invalid(exc.field, exc.message)
    if size is None:
        return fail("bad_payload", "The payload is not representable as JSON")
    try:
        payload = spec.payload.model_validate(raw)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in err["loc"]) or "(payload)", "message": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        first = details[0]
        return fail("validation_failed", f"field '{first['field']}': {first['message']}", details)
    try:
        return ok(await spec.handler(ctx, payload))
    except AppError as exc:
        return fail(exc.code, exc.message, exc.details)
    except Exception as exc:
        if is_unavailable(exc):
            log.warning("database unavailable", event_name=event, namespace=ctx.namespace, error=str(exc))
            return fail(*DATABASE_UNAVAILABLE)
        log.exception("event handler failed", event_name=event, namespace=ctx.namespace)
        return fail("internal", "Internal server error")


def specs_by_name(*groups: list[EventSpec[Any]]) -> dict[str, EventSpec[Any]]:
    table: dict[str, EventSpec[Any]] = {}
    for group in groups:
        for spec in group:
            if spec.name in table:
                raise RuntimeError(f"event {spec.name} declared twice")
            table[spec.name] = spec
    return table
