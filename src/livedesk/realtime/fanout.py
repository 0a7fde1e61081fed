"""Delivering an event to a room's sockets in this process, without a task per socket.

python-socketio's ``AsyncManager.emit`` encodes a packet once and then starts one asyncio task
per recipient and waits for them all. Each of those tasks only puts the packet on the
recipient's Engine.IO queue, which never blocks (the queue is unbounded), so the tasks buy
nothing and cost a task, a wait and several loop turns per message — on the chat hot path that
was as much as the rest of the fan-out together. ``LocalFanout`` puts the packet on each
queue in turn instead. Emits that ask for a callback keep the library's path.

With Redis, ``redis_fanout.RedisFanout`` publishes each emit on its rooms' channels and every
process delivers locally through the same loop (``AsyncPubSubManager`` calls the next manager
in the MRO for its local delivery).

Each process also notes the newest chat sequence it has delivered per consultation and
namespace (``delivered``): a message committed elsewhere whose fan-out never arrived (the
sender's process died after its ack, or Redis refused the publish) shows up as a consultation
whose stored ``last_seq`` is ahead of it, and ``consultations/chat_redelivery.py`` delivers
it here with ``emit_local`` (this process's sockets only, never through Redis).
"""

from __future__ import annotations

from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet

CHAT_MESSAGE = "chat.message"


class LocalFanout(socketio.AsyncManager):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (namespace, consultation id) → the newest chat sequence this process fanned out.
        self.delivered: dict[tuple[str, str], int] = {}

    async def emit_local(self, event: str, data: Any, namespace: str, room: str | list[str]) -> None:
        """Deliver to this process's sockets only (with Redis, ``emit`` would publish)."""
        await LocalFanout.emit(self, event, data, namespace, room=room)

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: str | list[str] | None = None,
        skip_sid: str | list[str] | None = None,
        callback: Any = None,
        to: str | None = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs
            )
            return
        room = to or room
        if event == CHAT_MESSAGE and isinstance(data, dict):
            # Noted even with no local recipient: what counts is that the fan-out arrived.
            cid, seq = data.get("consultation_id"), data.get("seq")
            if (
                isinstance(cid, str)
                and isinstance(seq, int)
                and seq > self.delivered.get((namespace, cid), 0)
            ):
                self.delivered[namespace, cid] = seq
        if namespace not in self.rooms:
            return
        # The library's argument rules: a tuple is several arguments, None is none.
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        recipients = [eio_sid for sid, eio_sid in self.get_participants(namespace, room) if sid not in skip]
        if not recipients:
            return
        encoded = self.server.packet_class(packet.EVENT, namespace=namespace, data=[event, *args]).encode()
        frames = [
            eio_packet.Packet(eio_packet.MESSAGE, part)
            for part in (encoded if isinstance(encoded, list) else [encoded])
        ]
        for eio_sid in recipients:
            for frame in frames:
                await self.server._send_eio_packet(eio_sid, frame)
