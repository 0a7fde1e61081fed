"""Delivering an event to a room's sockets in this process, without a task per socket.

python-socketio's ``AsyncManager.emit`` encodes a packet once and then starts one asyncio task
per recipient and waits for them all. Each of those tasks only puts the packet on the
recipient's Engine.IO queue, which never blocks (the queue is unbounded), so the tasks buy
nothing and cost a task, a wait and several loop turns per message — on the chat hot path that
was as much as the rest of the fan-out together. ``LocalFanout`` puts the packet on each
queue in turn instead. Emits that ask for a callback keep the library's path.

With Redis, ``RedisFanout`` publishes as before and each process delivers locally through the
same loop (``AsyncPubSubManager`` calls the next manager in the MRO for its local delivery).
"""

from __future__ import annotations

from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet


class LocalFanout(socketio.AsyncManager):  # type: ignore[misc]
    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: str | None = None,
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


class RedisFanout(socketio.AsyncRedisManager, LocalFanout):  # type: ignore[misc]
    """Fan-out through Redis; each process's local delivery is ``LocalFanout``'s."""
