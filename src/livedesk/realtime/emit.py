"""Emitting events after the transaction commits, and only then.

Services call ``emit(session, event, payload, room=…, namespace=…)``; the event rides on the
session's transaction scope (``kit/db.queue_event``) and nothing leaves until the handler's
transaction has committed, so no client ever hears of a change that was rolled back. The
Socket.IO server is the scope's sink (``sink_for``, wired by ``realtime/server.py``); no
service holds it.
"""

from __future__ import annotations

from typing import Any

import socketio
from aiohttp import web
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.db import EventSink, Outgoing, queue_event

SIO = web.AppKey("sio", socketio.AsyncServer)


def _plain(payload: Any) -> Any:
    return payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload


def emit(
    session: AsyncSession,
    event: str,
    payload: Any,
    *,
    room: str | list[str],
    namespace: str,
    skip_sid: str | None = None,
) -> None:
    """Send ``event`` to ``room`` in ``namespace`` once ``session``'s transaction commits."""
    queue_event(session, Outgoing(event, _plain(payload), room, namespace, skip_sid))


def sink_for(sio: socketio.AsyncServer) -> EventSink:
    """The database scope's event sink: the Socket.IO server (and through its manager, every
    process)."""

    async def send(outgoing: Outgoing) -> None:
        await sio.emit(
            outgoing.event,
            outgoing.data,
            room=outgoing.room,
            namespace=outgoing.namespace,
            skip_sid=outgoing.skip_sid,
        )

    return send
