"""Fan-out between processes through Redis, where each process hears only what its sockets need.

python-socketio's ``AsyncRedisManager`` publishes every emit on one channel that every process
listens to, so every process decodes every event of the whole cluster, including the (most)
events for rooms where it has no socket: with two processes that decoding was the largest part
of a chat message's CPU, and it grows with every replica added. Here Redis does the routing:

- **a channel per room**: ``<channel>:room:<namespace>:<room>``. A process SUBSCRIBEs to a
  room's channel when its first local socket enters the room and UNSUBSCRIBEs when the last one
  leaves (``basic_enter_room``/``basic_leave_room``, the two places every membership change of
  the library goes through: connect, enter/leave, disconnect, close). Every sid is a room of its
  own, so an emit to one socket, or a disconnect or room change of a socket held elsewhere,
  reaches only the process that holds it. The subscription changes are batched: a burst of
  connects costs one SUBSCRIBE command with many channels.
- **an emit to a room** is delivered to this process's sockets at once (no Redis round trip)
  and published on the room's channel; an emit to several rooms is published once per room,
  and a process in more than one of them delivers it once (the message id, before the JSON,
  is remembered for a moment). Publishes go out in emit order on one connection, whatever
  queued during the previous round trip in one pipeline.
- **the shared channel** ``<channel>`` carries only broadcasts (no room), and
  ``<channel>:host:<host id>`` the answers to callbacks.

Every message is ``<host id><message id><JSON>``: the JSON part is python-socketio's own
message (``{"method": "emit", …}``), handed to the library's handlers; the two ids in front
let a process drop its own messages and repeats without decoding them.

Redis going away: publishes fail (logged; the emit's local part went out already), and the
listener reconnects with a short back-off and SUBSCRIBEs every channel its rooms need again.
What was published meanwhile is gone at Redis: chat is redelivered from the database by
``consultations/chat_redelivery.py``, the other state is re-read by clients on their own
triggers (docs/architecture.md, "Fan-out between processes").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import OrderedDict, deque
from typing import Any

import orjson
from redis import asyncio as aioredis
from socketio import async_pubsub_manager

from livedesk.kit.logging import get_logger
from livedesk.realtime.fanout import LocalFanout

log = get_logger("livedesk.fanout")

# How long a process remembers a message id, so that an emit to several rooms it is in is
# delivered once (the copies arrive within a few milliseconds of one another).
SEEN_MAX = 4096
# Reconnect back-off: short, since the pub/sub connection is what every cross-process event needs.
RETRY_FIRST, RETRY_MAX = 0.1, 1.0
# How long entering a new room waits for Redis to confirm the subscription (a handler that reads
# a snapshot right after joining must not miss an event published in between); never longer,
# so a Redis outage slows no connect by more than this.
CONFIRM_SECONDS = 1.0
# Publishes waiting for Redis at most (it stopped answering): beyond, the oldest are dropped.
OUTBOX_MAX = 50_000
_HOST = 32  # hex characters of a host id
_ID = 48  # host id + 16 hex characters of a per-process counter


class RedisFanout(async_pubsub_manager.AsyncPubSubManager, LocalFanout):  # type: ignore[misc]
    """See the module docstring."""

    name = "livedesk-redis-rooms"

    def __init__(self, url: str, channel: str) -> None:
        super().__init__(channel=channel)
        self.redis_url = url
        self.redis: aioredis.Redis | None = None
        self.pubsub: Any = None
        self._host_key = self.host_id.encode()
        self._counter = itertools.count(1)
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        # Room channels this process's sockets need, and what Redis has confirmed.
        self.wanted: set[str] = set()
        self.confirmed: set[str] = set()
        # Room channels asked of the current pub/sub connection.
        self.asked: set[str] = set()
        self._changed = asyncio.Event()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._flusher: asyncio.Task[None] | None = None
        # Counters for tests and the bench: messages read from Redis, and how many were decoded.
        self.received = 0
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._outbox_ready = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None
        self.decoded = 0
        self.reconnects = 0

    # ------------------------------------------------------------------ channel names

    @property
    def host_channel(self) -> str:
        return f"{self.channel}:host:{self.host_id}"

    def room_channel(self, namespace: str, room: str) -> str:
        return f"{self.channel}:room:{namespace}:{room}"

    def _base_channels(self) -> list[str]:
        return [self.channel, self.host_channel]

    # ------------------------------------------------------------------ room membership

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        new = room is not None and room not in self.rooms.get(namespace, {})
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if new:
            self.wanted.add(self.room_channel(namespace, room))
            self._changed.set()

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        if room is not None and room not in self.rooms.get(namespace, {}):
            self.wanted.discard(self.room_channel(namespace, room))
            self._changed.set()

    async def enter_room(self, sid: str, namespace: str, room: str, eio_sid: Any = None) -> None:
        channel = self.room_channel(namespace, room)
        await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        if channel in self.wanted and channel not in self.confirmed and self.pubsub is not None:
            waiter = asyncio.get_running_loop().create_future()
            waiting = self._waiters.setdefault(channel, [])
            waiting.append(waiter)
            try:
                await asyncio.wait_for(waiter, CONFIRM_SECONDS)
            except TimeoutError:
                with contextlib.suppress(ValueError):
                    waiting.remove(waiter)

    async def _flush_subscriptions(self) -> None:
        """Bring Redis in line with ``wanted``: one SUBSCRIBE and one UNSUBSCRIBE per batch."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            pubsub = self.pubsub
            if pubsub is None:
                continue  # the listener subscribes everything when it (re)connects
            on, off = self.wanted - self.asked, self.asked - self.wanted
            self.asked = set(self.wanted)
            self.confirmed -= off
            try:
                if on:
                    await pubsub.subscribe(*on)
                if off:
                    await pubsub.unsubscribe(*off)
            except Exception as exc:  # the listener reconnects and subscribes everything again
                log.warning("fan-out subscription change failed", error=repr(exc))

    # ------------------------------------------------------------------ sending

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        namespace = namespace or "/"
        if kwargs.get("ignore_queue") or callback is not None or room is None:
            # Broadcasts and emits that want an answer: the library's path (through _publish).
            await super().emit(
                event, data, namespace=namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
            )
            return
        await LocalFanout.emit(self, event, data, namespace, room=room, skip_sid=skip_sid)
        if isinstance(room, str) and self.is_sid_room(namespace, room):
            return  # a socket of this process: nobody else has it
        # python-socketio's message (livedesk sends no binary payloads: realtime/wire.py).
        args = list(data) if isinstance(data, tuple) else [data]
        message = {
            "method": "emit",
            "event": event,
            "data": args,
            "binary": False,
            "namespace": namespace,
            "room": room,
            "skip_sid": skip_sid,
            "callback": None,
            "host_id": self.host_id,
        }
        targets = [room] if isinstance(room, str) else list(dict.fromkeys(room))
        await self._send([self.room_channel(namespace, r) for r in targets], message)

    async def _publish(self, data: dict[str, Any]) -> None:
        """The library's control messages, each to the one channel whose listeners need it."""
        method, namespace = data.get("method"), data.get("namespace") or "/"
        channel = self.channel
        if method == "callback":
            channel = f"{self.channel}:host:{data['host_id']}"
        elif method in ("disconnect", "enter_room", "leave_room") and isinstance(data.get("sid"), str):
            channel = self.room_channel(namespace, data["sid"])
        elif method == "close_room" and isinstance(data.get("room"), str):
            channel = self.room_channel(namespace, data["room"])
        elif method == "emit" and data.get("room") is not None:
            room = data["room"]
            targets = [room] if isinstance(room, str) else list(dict.fromkeys(room))
            await self._send([self.room_channel(namespace, r) for r in targets], data)
            return
        await self._send([channel], data)

    async def _send(self, channels: list[str], message: dict[str, Any]) -> None:
        """Queue the message for the publisher: one connection, in the order emitted (a pool
        of connections let a later chat message overtake an earlier one on the way)."""
        frame = b"%s%016x%s" % (self._host_key, next(self._counter), orjson.dumps(message))
        if len(self._outbox) + len(channels) > OUTBOX_MAX:
            # Redis is not answering: the oldest go (chat is redelivered from the database).
            log.warning("fan-out outbox full; dropping the oldest", dropped=len(channels))
            for _ in channels:
                if self._outbox:
                    self._outbox.popleft()
        self._outbox.extend((channel, frame) for channel in channels)
        self._outbox_ready.set()
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.ensure_future(self._publish_loop())

    async def _publish_loop(self) -> None:
        """Everything queued since the last round trip goes out in one pipeline."""
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            batch = list(self._outbox)
            self._outbox.clear()
            if not batch:
                continue
            try:
                if self.redis is None:
                    self.redis = aioredis.Redis.from_url(self.redis_url)
                async with self.redis.pipeline(transaction=False) as pipe:
                    for channel, frame in batch:
                        pipe.publish(channel, frame)
                    await pipe.execute()
            except Exception as exc:
                # The local part went out; other processes miss these (chat is redelivered
                # from the database: consultations/chat_redelivery.py).
                log.warning("fan-out publish failed", error=repr(exc), messages=len(batch))

    # ------------------------------------------------------------------ receiving

    async def _thread(self) -> None:
        """The listener (python-socketio starts it from ``initialize``): subscribe, read, and on
        any failure reconnect and subscribe everything again."""
        retry = RETRY_FIRST
        self._flusher = asyncio.ensure_future(self._flush_subscriptions())
        try:
            while True:
                pubsub = None
                try:
                    if self.redis is None:
                        self.redis = aioredis.Redis.from_url(self.redis_url)
                    pubsub = self.redis.pubsub()
                    self.confirmed.clear()
                    self.asked = set(self.wanted)
                    await pubsub.subscribe(*self._base_channels(), *self.asked)
                    self.pubsub = pubsub
                    # Changes made while subscribing are caught up by the flusher.
                    self._changed.set()
                    retry = RETRY_FIRST
                    async for message in pubsub.listen():
                        await self._on_message(message)
                    raise ConnectionError("the pub/sub connection ended")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.pubsub = None
                    self.reconnects += 1
                    log.warning("fan-out listener lost Redis; reconnecting", error=repr(exc), retry=retry)
                    if pubsub is not None:
                        with contextlib.suppress(Exception):
                            await pubsub.aclose()
                    await asyncio.sleep(retry)
                    retry = min(retry * 2, RETRY_MAX)
        finally:
            self._flusher.cancel()
            if self._publisher is not None:
                self._publisher.cancel()

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "subscribe":
            channel = message["channel"].decode()
            self.confirmed.add(channel)
            for waiter in self._waiters.pop(channel, []):
                if not waiter.done():
                    waiter.set_result(None)
            return
        if kind != "message":
            return
        self.received += 1
        frame: bytes = message["data"]
        if frame[:_HOST] == self._host_key:
            return  # ours: delivered locally when it was sent
        key = frame[:_ID]
        if key in self._seen:
            return  # the same emit through another of its rooms
        self._seen[key] = None
        if len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)
        self.decoded += 1
        try:
            data = orjson.loads(frame[_ID:])
            await self._dispatch(data)
        except Exception:
            log.exception("fan-out message could not be handled")

    async def _dispatch(self, data: dict[str, Any]) -> None:
        method = data.get("method")
        if method == "callback":
            await self._handle_callback(data)
        elif method == "emit":
            await self._handle_emit(data)
        elif method == "disconnect":
            await self._handle_disconnect(data)
        elif method == "enter_room":
            await self._handle_enter_room(data)
        elif method == "leave_room":
            await self._handle_leave_room(data)
        elif method == "close_room":
            await self._handle_close_room(data)
