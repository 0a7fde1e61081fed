"""Socket.IO events of the chat."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

from livedesk.consultations import chat, service
from livedesk.consultations.chat_schemas import ChatMessageOut, ChatRead, ChatSend, ChatSync, ChatTyping
from livedesk.consultations.outgoing import CHAT_TYPING
from livedesk.identity import authorise_party, key_of
from livedesk.kit.background import BACKGROUND
from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.db import Outgoing
from livedesk.models import Consultation
from livedesk.realtime import rooms
from livedesk.realtime.protocol import ConnectionKey, EventContext, EventSpec


async def send(ctx: EventContext, payload: ChatSend) -> dict[str, Any]:
    """Ack: the stored message's sequence (the same for a repeated client_id), and the
    message itself, which the sending socket gets only here."""
    stored, out = await chat.send(ctx.app, ctx.actor, payload, skip_sid=ctx.sid)
    return {
        "seq": stored.seq,
        "id": out["id"],
        "duplicate": not stored.created,
        "created_at": out["created_at"],
        "message": out,
    }


async def sync(ctx: EventContext, payload: ChatSync) -> dict[str, Any]:
    """What the client missed: messages after its last seen sequence (one page, bounded in
    count and bytes), the newest sequence, and the cursor to ask from for the next page."""
    async with ctx.app[DB].read() as session:
        messages, last_seq = await chat.history(
            session,
            ctx.actor,
            payload.consultation_id,
            payload.after_seq,
            page_bytes=ctx.app[SETTINGS].chat_sync_page_bytes,
        )
    return {
        "messages": [ChatMessageOut.of(m).model_dump(mode="json") for m in messages],
        "last_seq": last_seq,
        "complete": not messages or messages[-1].seq >= last_seq,
        "next_after_seq": messages[-1].seq if messages else payload.after_seq,
    }


@dataclass
class _Relay:
    """One socket's typing state in one consultation on its way to the other party."""

    sent_at: float = float("-inf")
    sent: bool | None = None
    pending: dict[str, Any] | None = None
    targets: list[tuple[rooms.Room, str]] | None = None
    timer: asyncio.TimerHandle | None = None


# The socket's typing relays, one per consultation (they live and die with the socket).
_TYPING: ConnectionKey[dict[uuid.UUID, _Relay]] = ConnectionKey("chat.typing", dict)


def _relays(ctx: EventContext, now: float, window: float) -> dict[uuid.UUID, _Relay]:
    """The socket's relays (they live and die with the socket), without the idle ones."""
    relays = ctx.state(_TYPING)
    for key in [k for k, r in relays.items() if r.timer is None and now - r.sent_at >= window]:
        del relays[key]
    return relays


async def _relay(ctx: EventContext, relay: _Relay) -> None:
    event, targets = relay.pending, relay.targets
    relay.pending, relay.timer = None, None
    if event is None or targets is None:
        return
    relay.sent_at, relay.sent = time.monotonic(), event["typing"]
    for room, namespace in targets:
        # Not state: no transaction to wait for, straight to the sink.
        await ctx.app[DB].sink()(Outgoing(CHAT_TYPING, event, room, namespace, ctx.sid))


async def typing(ctx: EventContext, payload: ChatTyping) -> dict[str, Any]:
    """Pass the typing state on, coalesced: at most one event per socket and consultation per
    LIVEDESK_TYPING_RELAY_SECONDS (what arrives in between waits for the window's end, and
    only its last state goes, if it differs from the one sent); LIVEDESK_TYPING_RATE_LIMIT
    bounds what a party may send at all, before any database read."""
    settings = ctx.app[SETTINGS]
    await ctx.app[RATE_LIMITS].hit(
        settings.typing_rate_limit,
        "chat.typing",
        key_of(ctx.actor),
        message="Typing events too fast; slow down",
    )
    async with ctx.app[DB].read() as session:
        c = await service.load_for_party(session, payload.consultation_id, ctx.actor, write=False)
    event = {
        "consultation_id": str(c.id),
        "who": "shopper" if ctx.shopper else "advisor",
        "typing": payload.typing,
    }
    now, window = time.monotonic(), settings.typing_relay_seconds
    relay = _relays(ctx, now, window).setdefault(c.id, _Relay())
    relay.pending, relay.targets = event, chat.message_recipients(c)
    if relay.timer is None and now - relay.sent_at >= window:
        await _relay(ctx, relay)
        return {"coalesced": False}
    if payload.typing == relay.sent:
        relay.pending = None  # the other party already shows this state
    if relay.timer is None:
        app = ctx.app

        def flush() -> None:
            app[BACKGROUND].spawn(_relay(ctx, relay), name="chat.typing.relay")

        relay.timer = asyncio.get_running_loop().call_later(relay.sent_at + window - now, flush)
    return {"coalesced": True}


async def read(ctx: EventContext, payload: ChatRead) -> dict[str, Any]:
    """Record how far the party has read. A receipt that moves nothing (a repeat, an older
    sequence) is answered from a read, with no write and nothing sent to anyone; the
    LIVEDESK_READ_RATE_LIMIT bounds the rest."""
    await ctx.app[RATE_LIMITS].hit(
        ctx.app[SETTINGS].read_rate_limit,
        "chat.read",
        key_of(ctx.actor),
        message="Read receipts too fast; slow down",
    )
    async with ctx.app[DB].read() as session:
        c = await service.load_for_party(session, payload.consultation_id, ctx.actor, write=False)
        authorise_party(ctx.actor, c, write=True)
        seq = min(payload.seq, c.last_seq)
        if seq <= _read_seq(ctx, c):
            return {"seq": seq}
    async with ctx.app[DB].transaction() as session:
        seq = await chat.mark_read(session, ctx.actor, payload.consultation_id, payload.seq)
    return {"seq": seq}


def _read_seq(ctx: EventContext, c: Consultation) -> int:
    return c.shopper_read_seq if ctx.shopper is not None else c.advisor_read_seq


SHOPPER: list[EventSpec[Any]] = [
    EventSpec("chat.send", ChatSend, send),
    EventSpec("chat.sync", ChatSync, sync),
    EventSpec("chat.typing", ChatTyping, typing),
    EventSpec("chat.read", ChatRead, read),
]
STAFF: list[EventSpec[Any]] = list(SHOPPER)
