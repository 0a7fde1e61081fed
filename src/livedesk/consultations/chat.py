"""Chat that never loses a message.

Each message carries a client-made id: sending it again (a retry after a lost ack, a resend
after a reconnect) stores nothing new and answers with the same sequence number. The
sequence is per consultation, handed out in the same transaction as the insert, and is what a
reconnecting client replays from (``chat.sync`` with the last sequence it saw).

A product card is the catalogue's, never the sender's: only staff send one, naming a SKU, and
the server fills in the rest (``catalogue/cards.py``).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.catalogue import cards
from livedesk.consultations import service
from livedesk.consultations.chat_schemas import ChatMessageOut, ChatSend
from livedesk.consultations.chat_store import CHAT_STORE, RateLimitSpent, SendCommand, StoredMessage
from livedesk.consultations.outgoing import CHAT_MESSAGE, CHAT_READ
from livedesk.consultations.parties import CHAT_OPEN
from livedesk.identity import Actor, ShopperActor, key_of
from livedesk.kit.background import BACKGROUND
from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.db import EventSink, Outgoing
from livedesk.kit.errors import AppError, Forbidden
from livedesk.models import Consultation, Message, MessageKind, SenderKind, Shopper
from livedesk.realtime import rooms
from livedesk.realtime.emit import emit
from livedesk.realtime.wire import encoded_size

__all__ = ["CHAT_OPEN", "deliver", "history", "mark_read", "message_recipients", "send"]

SYNC_PAGE = 200
# ids, client id, sender, kind, time and the JSON around them, with room to spare
_SYNC_FIELDS_BYTES = 400
_SYNC_READ_ROWS = 16
# Test hook (tests/integration/test_delivery_survives.py): store and ack but never fan out, as
# if the process died in between — a window too short to hit with a kill on purpose. What
# covers the loss is consultations/chat_redelivery.py.
_DROP_FANOUT = os.environ.get("LIVEDESK_TEST_DROP_CHAT_FANOUT") == "1"


def message_recipients(c: Consultation) -> list[tuple[rooms.Room, str]]:
    """A chat message goes to the shopper's tabs and the assigned advisor's tabs."""
    targets: list[tuple[rooms.Room, str]] = [(rooms.shopper_of(c.shopper_id, c.id), rooms.SHOPPER_NS)]
    if c.advisor_id is not None:
        targets.append((rooms.staff(c.advisor_id), rooms.STAFF_NS))
    return targets


def _sender(actor: Actor) -> SenderKind:
    return SenderKind.SHOPPER if isinstance(actor, ShopperActor) else SenderKind.STAFF


async def send(
    app: web.Application, actor: Actor, payload: ChatSend, *, skip_sid: str | None = None
) -> tuple[StoredMessage, dict[str, Any]]:
    """Store the message once (committed when this returns); its delivery to the parties'
    other sockets (all but ``skip_sid``, the sender's, which has it in its ack) follows.

    A repeated client id stores nothing new and answers with the first sequence. Only new
    messages count against the sender's rate limit: a re-send after a reconnect is not one.
    """
    body, data = payload.body, dict(payload.data) if payload.data else {}
    if payload.kind == MessageKind.PRODUCT:
        body, data = await _product_card(app, actor, payload)
    limits, rule, key = app[RATE_LIMITS], app[SETTINGS].chat_rate_limit, key_of(actor)
    command = SendCommand(
        actor=actor,
        consultation_id=payload.consultation_id,
        client_id=payload.client_id,
        kind=payload.kind,
        body=body,
        data=data,
        allow_new=await limits.allows(rule, "chat.send", key, reconciled=True),
    )
    try:
        stored = await app[CHAT_STORE].send(command)
    except RateLimitSpent:
        refusal = await limits.refusal(
            rule, "chat.send", key, message="Sending too fast; slow down", reconciled=True
        )
        raise refusal from None
    if stored.created:
        await limits.count(rule, "chat.send", key, reconciled=True)
    # The sender's socket gets the message in its ack; everyone else after it (a task, so
    # the ack is not held behind the fan-out). A repeat is delivered again too: the first
    # attempt may have committed in a process that died before fanning it out (clients drop
    # a sequence they already have). A fan-out lost after the ack (this process dies, Redis
    # refuses the publish) is made good by every process's chat_redelivery check.
    out = ChatMessageOut.json_of_stored(stored)
    if not _DROP_FANOUT:
        app[BACKGROUND].spawn(deliver(app[DB].sink(), stored, out, skip_sid=skip_sid), name="chat.deliver")
    return stored, out


async def _product_card(app: web.Application, actor: Actor, payload: ChatSend) -> tuple[str, dict[str, Any]]:
    """The card's body and data from the catalogue, in the consultation's language; whatever
    else the sender put in ``body`` and ``data`` is dropped. A shopper may not send one at all
    (a card looks like the shop speaking). Only product cards pay for these reads: the text
    path's budget is untouched."""
    if isinstance(actor, ShopperActor):
        raise Forbidden("Only staff send product cards", code="product_card_staff_only")
    sku = payload.product_sku
    async with app[DB].read() as session:
        # Party rules first, so a stranger learns nothing about the catalogue here either.
        c = await service.load_for_party(session, payload.consultation_id, actor, write=False)
        try:
            product = await cards.sellable_product(session, sku)
        except AppError:
            # A re-send of a card stored before the product was withdrawn still answers with
            # the stored message (the store finds it by client id and writes nothing).
            if await _stored_before(session, c.id, payload.client_id):
                return payload.body, {}
            raise
        locale = await session.scalar(select(Shopper.locale).where(Shopper.id == c.shopper_id))
    language = cards.card_language(c.language, locale)
    return cards.product_card(product, language, app[SETTINGS].product_page_url)


async def _stored_before(session: AsyncSession, consultation_id: uuid.UUID, client_id: str) -> bool:
    found = await session.scalar(
        select(Message.id).where(
            Message.consultation_id == consultation_id,
            Message.client_id == client_id,
            Message.sender_kind == SenderKind.STAFF,
        )
    )
    return found is not None


async def deliver(
    sink: EventSink, stored: StoredMessage, out: dict[str, Any], *, skip_sid: str | None = None
) -> None:
    """Emit a committed message (``out``, its JSON form) to the shopper's tabs and the assigned
    advisor's tabs. The store committed in its own transaction (``chat_store.py``), so this
    goes straight to the database's event sink."""
    targets: list[tuple[rooms.Room, str]] = [
        (rooms.shopper_of(stored.shopper_id, stored.consultation_id), rooms.SHOPPER_NS)
    ]
    if stored.advisor_id is not None:
        targets.append((rooms.staff(stored.advisor_id), rooms.STAFF_NS))
    for room, namespace in targets:
        await sink(Outgoing(CHAT_MESSAGE, out, room, namespace, skip_sid))


async def history(
    session: AsyncSession, actor: Actor, consultation_id: uuid.UUID, after_seq: int, *, page_bytes: int
) -> tuple[list[Message], int]:
    """Messages after ``after_seq``, oldest first, and the newest sequence: one page of at
    most ``SYNC_PAGE`` messages and ``LIVEDESK_CHAT_SYNC_PAGE_BYTES`` of them as JSON (always
    at least one message). The page's last sequence is the cursor the client asks from next
    (``web/shared/socket.js`` loops until it has everything): an answer of 1.45 MB that a
    client asked for 600 times and never read was what pinned the server's memory."""
    c = await service.load_for_party(session, consultation_id, actor, write=False)
    # Read a few rows at a time: the page is bounded in bytes, so loading all SYNC_PAGE rows
    # of long messages to send a handful would cost megabytes per request.
    rows = await session.stream_scalars(
        select(Message)
        .where(Message.consultation_id == consultation_id, Message.seq > after_seq)
        .order_by(Message.seq)
        .limit(SYNC_PAGE)
        .execution_options(yield_per=_SYNC_READ_ROWS)
    )
    budget, page = page_bytes, list[Message]()
    try:
        async for message in rows:
            budget -= sync_size(message)
            if budget < 0 and page:
                break
            page.append(message)
    finally:
        await rows.close()
    return page, c.last_seq


def sync_size(message: Message) -> int:
    """An upper bound of the message's size in a ``chat.sync`` answer (its text and data,
    plus the ids, names and time around them)."""
    return _SYNC_FIELDS_BYTES + encoded_size((message.body, message.data))


async def mark_read(session: AsyncSession, actor: Actor, consultation_id: uuid.UUID, seq: int) -> int:
    c = await service.load_for_party(session, consultation_id, actor)
    seq = min(seq, c.last_seq)
    column = (
        Consultation.shopper_read_seq if isinstance(actor, ShopperActor) else Consultation.advisor_read_seq
    )
    # Read state only moves forward, whatever order the acks arrive in.
    await session.execute(
        update(Consultation).where(Consultation.id == c.id, column < seq).values({column: seq})
    )
    payload = {"consultation_id": str(c.id), "reader": _sender(actor).value, "seq": seq}
    for room, namespace in message_recipients(c):
        emit(session, CHAT_READ, payload, room=room, namespace=namespace)
    return seq
