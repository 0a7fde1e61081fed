"""Emitting events after the transaction commits, and only then.

Services call ``emit(session, event, payload, room=…, namespace=…)``; nothing leaves
until the handler's transaction has committed, so no client ever hears of a change that was
rolled back.
"""

from __future__ import annotations

from typing import Any

import socketio
from aiohttp import web
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.db import after_commit

SIO = web.AppKey("sio", socketio.AsyncServer)


def _plain(payload: Any) -> Any:
    return payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload


def emit(
    session: AsyncSession,
    sio: socketio.AsyncServer,
    event: str,
    payload: Any,
    *,
    room: str | list[str],
    namespace: str,
    skip_sid: str | None = None,
) -> None:
    data = _plain(payload)

    async def send() -> None:
        await sio.emit(event, data, room=room, namespace=namespace, skip_sid=skip_sid)

    after_commit(session, send)
