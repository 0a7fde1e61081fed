"""Socket.IO events of the chat."""

from __future__ import annotations

from typing import Any

from livedesk.consultations import chat, service
from livedesk.consultations.chat_schemas import ChatMessageOut, ChatRead, ChatSend, ChatSync, ChatTyping
from livedesk.kit.context import DB
from livedesk.realtime.emit import SIO
from livedesk.realtime.protocol import EventContext, EventSpec


async def send(ctx: EventContext, payload: ChatSend) -> dict[str, Any]:
    """Ack: the stored message's sequence (the same for a repeated client_id), and the
    message itself, which the sending socket gets only here."""
    stored, out = await chat.send(ctx, payload)
    return {
        "seq": stored.seq,
        "id": out["id"],
        "duplicate": not stored.created,
        "created_at": out["created_at"],
        "message": out,
    }


async def sync(ctx: EventContext, payload: ChatSync) -> dict[str, Any]:
    """What the client missed: messages after its last seen sequence (one page), and the
    newest sequence so it knows whether to ask again."""
    async with ctx.app[DB].read() as session:
        messages, last_seq = await chat.history(session, ctx, payload.consultation_id, payload.after_seq)
    return {
        "messages": [ChatMessageOut.of(m).model_dump(mode="json") for m in messages],
        "last_seq": last_seq,
        "complete": not messages or messages[-1].seq >= last_seq,
    }


async def typing(ctx: EventContext, payload: ChatTyping) -> dict[str, Any]:
    async with ctx.app[DB].read() as session:
        c = await service.load_for_party(session, payload.consultation_id, ctx, write=False)
    event = {
        "consultation_id": str(c.id),
        "who": "shopper" if ctx.shopper else "advisor",
        "typing": payload.typing,
    }
    for room, namespace in chat.message_recipients(c):
        await ctx.app[SIO].emit(chat.CHAT_TYPING, event, room=room, namespace=namespace, skip_sid=ctx.sid)
    return {}


async def read(ctx: EventContext, payload: ChatRead) -> dict[str, Any]:
    async with ctx.app[DB].transaction() as session:
        seq = await chat.mark_read(session, ctx.app[SIO], ctx, payload.consultation_id, payload.seq)
    return {"seq": seq}


SHOPPER: list[EventSpec[Any]] = [
    EventSpec("chat.send", ChatSend, send),
    EventSpec("chat.sync", ChatSync, sync),
    EventSpec("chat.typing", ChatTyping, typing),
    EventSpec("chat.read", ChatRead, read),
]
STAFF: list[EventSpec[Any]] = list(SHOPPER)
