"""Where a call's server media legs live, and signalling routed to that process.

One process per call holds every server leg of it (both parties', for recording and monitoring
alike) and every supervisor's monitoring connection to it: forwarding a party's packets to a
supervisor is then a local hand-over, never media through Redis. The process is chosen when the
call first needs a leg (a recording starts, a supervisor listens) — the one that handles that
event — and noted in Redis (``<channel>:media:placement``, consultation id → process id).

Signalling for a leg (an offer, a monitor start/stop, a talk answer) may reach any process: the
one holding the sender's socket. It is handled there when that process holds the call, and
otherwise sent to the holder over Redis on the holder's own channel
(``<channel>:media:<process id>``), with the answer coming back on the sender's channel. The SDP
goes through Redis (a few kilobytes), the media never does.

A claim survives its process's death: the entry stays, and whoever looks at it checks that its
process still listens on its channel (Redis drops a dead process's subscription as soon as its
connection closes, so a ``kill -9`` is seen at once; a heartbeat would take 20 s). A dead
holder's calls are taken over by one live process (a compare-and-set in Redis), which tells the
parties ``leg.moved`` so their browsers offer their legs again, now to it.

Without Redis there is one process, and it holds everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from livedesk.kit.background import BACKGROUND
from livedesk.kit.context import SETTINGS
from livedesk.kit.errors import AppError
from livedesk.kit.logging import get_logger
from livedesk.kit.periodic import Periodic
from livedesk.realtime.process import PROCESS

log = get_logger("livedesk.placement")

# A routed request waits this long for the holder's answer (an aiortc answer with TURN takes
# up to its 3 s gathering cap, a busy process a little more).
CALL_TIMEOUT_SECONDS = 15.0
# How often each process looks for calls held by a process that died.
WATCH_SECONDS = 1.0

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
Moved = Callable[[uuid.UUID, str], Awaitable[None]]

# Take the call for ARGV[3] if it is unclaimed or still held by ARGV[2] (the holder that was
# seen dead): exactly one process wins a takeover.
_CLAIM = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (not current) or current == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return ARGV[3]
end
return current
"""
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RemoteError(AppError):
    """An error the holder answered with, raised again here with its code and status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, code=code)
        self.status = status


class Placement:
    """This process's view of where calls' legs live, and its end of the routing."""

    def __init__(self, app: web.Application, process_id: str, redis_url: str | None, channel: str) -> None:
        self.app = app
        self.id = process_id
        self.redis_url = redis_url
        self.key = f"{channel}:media:placement"
        self.prefix = f"{channel}:media:"
        self.handlers: dict[str, Handler] = {}
        self.on_moved: list[Moved] = []
        self._redis: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._listener: asyncio.Task[None] | None = None

    @property
    def routed(self) -> bool:
        return self.redis_url is not None

    def channel_of(self, process_id: str) -> str:
        return self.prefix + process_id

    def handle(self, op: str, handler: Handler) -> None:
        self.handlers[op] = handler

    # ---------------------------------------------------------------- life

    async def start(self) -> None:
        if self.redis_url is None:
            return
        self._redis = aioredis.Redis.from_url(self.redis_url)
        self._pubsub = self._redis.pubsub()
        await self._pubsub.subscribe(self.channel_of(self.id))
        self._listener = asyncio.create_task(self._listen(), name="placement.listen")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        # Forgotten first: a watch run still under way (background tasks stop after this)
        # finds no Redis instead of opening a connection nobody would close.
        connections, self._pubsub, self._redis = (self._pubsub, self._redis), None, None
        for connection in connections:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.aclose()
        for future in self._pending.values():
            future.cancel()

    # ---------------------------------------------------------------- who holds a call

    async def alive(self, process_id: str) -> bool:
        if process_id == self.id:
            return True
        assert self._redis is not None
        rows = await self._redis.pubsub_numsub(self.channel_of(process_id))
        return bool(rows) and int(rows[0][1]) > 0

    async def holder(self, consultation_id: uuid.UUID, *, claim: bool) -> str | None:
        """The live process holding the call's legs. With ``claim``, this process takes the
        call when nobody holds it, or when its holder died (the parties are told to move).
        While Redis is unreachable the call is handled here: a leg where its offer lands beats
        no leg (as before placement existed); the claim is made again once Redis is back."""
        if self._redis is None:
            return self.id
        try:
            return await self._holder(consultation_id, claim=claim)
        except (RedisError, OSError):
            log.warning("Redis unreachable: call media handled here", consultation_id=str(consultation_id))
            return self.id

    async def _holder(self, consultation_id: uuid.UUID, *, claim: bool) -> str | None:
        assert self._redis is not None
        key = str(consultation_id)
        current = await self._redis.hget(self.key, key)
        current_id = _text(current) if current else None
        if current_id is not None and await self.alive(current_id):
            return current_id
        if not claim and current_id is None:
            return None
        won = await self._redis.eval(_CLAIM, 1, self.key, key, current_id or "", self.id)
        winner = won.decode() if isinstance(won, bytes) else str(won)
        if winner == self.id and current_id is not None:
            log.info("took over a call's legs from a dead process", consultation_id=key, dead=current_id)
            await self._moved(consultation_id)
        return winner

    async def release(self, consultation_id: uuid.UUID) -> None:
        """The call needs no leg here any more: forget the claim (if it is still ours)."""
        if self._redis is None:
            return
        with contextlib.suppress(Exception):
            await self._redis.eval(_RELEASE, 1, self.key, str(consultation_id), self.id)

    async def _moved(self, consultation_id: uuid.UUID) -> None:
        for callback in self.on_moved:
            try:
                await callback(consultation_id, self.id)
            except Exception:
                log.exception("telling parties their legs moved failed", consultation_id=str(consultation_id))

    async def take_over_dead(self) -> None:
        """Take over the calls of processes that died, so the parties re-offer at once (every
        ``WATCH_SECONDS``)."""
        if self._redis is None:
            return
        entries = await self._redis.hgetall(self.key)
        holders = {_text(v) for v in entries.values()}
        dead = {h for h in holders if not await self.alive(h)}
        for raw_key, raw_holder in entries.items():
            if _text(raw_holder) in dead:
                await self.holder(uuid.UUID(_text(raw_key)), claim=True)

    # ---------------------------------------------------------------- routing

    async def run(
        self, consultation_id: uuid.UUID, op: str, args: dict[str, Any], *, claim: bool = True
    ) -> Any:
        """Run ``op`` where the call's legs live (here, or on the holder through Redis)."""
        holder = await self.holder(consultation_id, claim=claim)
        if holder is None:
            return None
        return await self.run_on(holder, op, args)

    async def run_on(self, process_id: str, op: str, args: dict[str, Any]) -> Any:
        if process_id == self.id or self._redis is None:
            return await self.handlers[op](args)
        request_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message = {"request": request_id, "reply_to": self.id, "op": op, "args": args}
        try:
            await self._redis.publish(self.channel_of(process_id), orjson.dumps(message))
            reply = await asyncio.wait_for(future, CALL_TIMEOUT_SECONDS)
        except (TimeoutError, RedisError, OSError):
            raise AppError(
                "The process holding this call's media did not answer", code="media_unavailable"
            ) from None
        finally:
            self._pending.pop(request_id, None)
        if reply.get("ok"):
            return reply.get("data")
        error = reply.get("error") or {}
        raise RemoteError(int(error.get("status", 400)), str(error.get("code")), str(error.get("message")))

    async def _listen(self) -> None:
        assert self._pubsub is not None
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("placement channel read failed")
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            try:
                body = orjson.loads(message["data"])
            except orjson.JSONDecodeError:
                continue
            if "reply" in body:
                future = self._pending.get(body["reply"])
                if future is not None and not future.done():
                    future.set_result(body)
            elif "request" in body:
                self.app[BACKGROUND].spawn(self._serve(body), name="placement.serve")

    async def _serve(self, body: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"reply": body["request"]}
        handler = self.handlers.get(str(body.get("op")))
        try:
            if handler is None:
                raise AppError("Unknown media operation", code="unknown_operation")
            reply["ok"] = True
            reply["data"] = await handler(body.get("args") or {})
        except AppError as exc:
            reply = {"reply": body["request"], "ok": False, "error": {**exc.to_dict(), "status": exc.status}}
        except Exception as exc:
            log.exception("routed media operation failed", op=body.get("op"))
            reply = {
                "reply": body["request"],
                "ok": False,
                "error": {"code": "media_failed", "message": f"{type(exc).__name__}", "status": 500},
            }
        assert self._redis is not None
        with contextlib.suppress(Exception):
            await self._redis.publish(
                self.channel_of(str(body["reply_to"])), orjson.dumps(reply, default=str)
            )


PLACEMENT = web.AppKey("placement", Placement)


async def placement_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: this process's channel and the watch for calls of dead processes."""
    settings = app[SETTINGS]
    placement = Placement(app, app[PROCESS].id, settings.redis_url or None, settings.redis_channel)
    app[PLACEMENT] = placement
    await placement.start()
    if placement.routed:
        Periodic("placement.watch", placement.take_over_dead, every=WATCH_SECONDS).spawn(app[BACKGROUND])
    yield
    await placement.close()
