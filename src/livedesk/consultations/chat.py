"""Chat that never loses a message.

Each message carries a client-made id: sending it again (a retry after a lost ack, a resend
after a reconnect) stores nothing new and answers with the same sequence number. The
sequence is per consultation, handed out in the same transaction as the insert, and is what a
reconnecting client replays from (``chat.sync`` with the last sequence it saw).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.consultations import service
from livedesk.consultations.chat_schemas import ChatMessageOut, ChatSend
from livedesk.customers.timeline import new_event
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict, NotFound
from livedesk.models import (
    ChatFile,
    Consultation,
    ConsultationStatus,
    Message,
    MessageKind,
    SenderKind,
    TimelineKind,
)
from livedesk.realtime import rooms
from livedesk.realtime.emit import emit
from livedesk.realtime.protocol import EventContext

CHAT_MESSAGE = "chat.message"
CHAT_TYPING = "chat.typing"
CHAT_READ = "chat.read"
# Chat stays open through wrap-up so the advisor can send a last link; closed is closed.
CHAT_OPEN = (
    ConsultationStatus.QUEUED,
    ConsultationStatus.OFFERED,
    ConsultationStatus.ACTIVE,
    ConsultationStatus.WRAP_UP,
)
SYNC_PAGE = 500


def message_recipients(c: Consultation) -> list[tuple[str, str]]:
    """A chat message goes to the shopper's tabs and the assigned advisor's tabs."""
    targets = [(rooms.shopper(c.shopper_id), rooms.SHOPPER_NS)]
    if c.advisor_id is not None:
        targets.append((rooms.staff(c.advisor_id), rooms.STAFF_NS))
    return targets


def _sender(ctx: EventContext) -> SenderKind:
    return SenderKind.SHOPPER if ctx.shopper is not None else SenderKind.STAFF


async def send(
    session: AsyncSession,
    sio: socketio.AsyncServer,
    ctx: EventContext,
    payload: ChatSend,
    before_insert: Callable[[], Awaitable[None]] | None = None,
) -> tuple[Message, bool]:
    """Store the message once; returns it and whether it is new. ``before_insert`` runs only
    for a new message (the rate limit: a re-send after a reconnect is not a new message)."""
    sender = _sender(ctx)
    # Lock the consultation first: a retry racing its original then waits and finds it.
    c = await service.load_for_party(session, payload.consultation_id, ctx)
    existing = await session.scalar(
        select(Message).where(
            Message.consultation_id == payload.consultation_id,
            Message.client_id == payload.client_id,
            Message.sender_kind == sender,
        )
    )
    if existing is not None:
        # The first attempt may have committed in a process that died before fanning it out:
        # send it on again (clients drop a sequence they already have).
        _deliver(session, sio, c, existing)
        return existing, False
    if c.status not in CHAT_OPEN:
        raise Conflict(f"The consultation is {c.status.value}; chat is closed", code="chat_closed")
    if ctx.staff is not None and ctx.staff.staff_id != c.advisor_id:
        raise Conflict("Only the assigned advisor writes in this chat", code="not_a_party")
    if before_insert is not None:
        await before_insert()
    data = dict(payload.data) if payload.data else {}
    if payload.kind in (MessageKind.IMAGE, MessageKind.FILE):
        data = await _file_reference(session, c.id, data)
    # The row is locked (load_for_party), so the sequence cannot be handed out twice.
    c.last_seq += 1
    message = Message(
        id=uuid.uuid4(),
        consultation_id=c.id,
        seq=c.last_seq,
        client_id=payload.client_id,
        sender_kind=sender,
        sender_staff_id=ctx.staff.staff_id if ctx.staff else None,
        kind=payload.kind,
        body=payload.body,
        data=data,
        created_at=utcnow(),
    )
    session.add(message)
    # The consultation row is locked and a merge re-points consultations too, so its
    # shopper_id is current: no need for append_event's merged-profile lookup on this hot path.
    session.add(
        new_event(
            c.shopper_id,
            TimelineKind.MESSAGE,
            payload.body[:200] if payload.kind == MessageKind.TEXT else f"[{payload.kind.value}]",
            {"seq": message.seq, "sender": sender.value, "kind": payload.kind.value},
            actor_staff_id=message.sender_staff_id,
            consultation_id=c.id,
            ref_id=str(message.id),
        )
    )
    _deliver(session, sio, c, message)
    return message, True


def _deliver(session: AsyncSession, sio: socketio.AsyncServer, c: Consultation, message: Message) -> None:
    out = ChatMessageOut.of(message).model_dump(mode="json")
    for room, namespace in message_recipients(c):
        emit(session, sio, CHAT_MESSAGE, out, room=room, namespace=namespace)


async def _file_reference(
    session: AsyncSession, consultation_id: uuid.UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """An image or file message must point at a file uploaded to this consultation."""
    raw = data.get("file_id")
    try:
        file_id = uuid.UUID(str(raw))
    except ValueError:
        raise NotFound("field 'data.file_id': no such file", code="file_not_found") from None
    found = await session.get(ChatFile, file_id)
    if found is None or found.consultation_id != consultation_id:
        raise NotFound("field 'data.file_id': no such file in this consultation", code="file_not_found")
    return {
        "file_id": str(found.id),
        "filename": found.filename,
        "content_type": found.content_type,
        "size": found.size,
        "url": f"/api/v1/files/{found.id}",
    }


async def history(
    session: AsyncSession, ctx: EventContext, consultation_id: uuid.UUID, after_seq: int
) -> tuple[list[Message], int]:
    """Messages after ``after_seq``, oldest first (a page), and the newest sequence."""
    c = await service.load_for_party(session, consultation_id, ctx, write=False)
    rows = await session.scalars(
        select(Message)
        .where(Message.consultation_id == consultation_id, Message.seq > after_seq)
        .order_by(Message.seq)
        .limit(SYNC_PAGE)
    )
    return list(rows.all()), c.last_seq


async def mark_read(
    session: AsyncSession, sio: socketio.AsyncServer, ctx: EventContext, consultation_id: uuid.UUID, seq: int
) -> int:
    c = await service.load_for_party(session, consultation_id, ctx)
    seq = min(seq, c.last_seq)
    column = Consultation.shopper_read_seq if ctx.shopper is not None else Consultation.advisor_read_seq
    # Read state only moves forward, whatever order the acks arrive in.
    await session.execute(
        update(Consultation).where(Consultation.id == c.id, column < seq).values({column: seq})
    )
    payload = {"consultation_id": str(c.id), "reader": _sender(ctx).value, "seq": seq}
    for room, namespace in message_recipients(c):
        emit(session, sio, CHAT_READ, payload, room=room, namespace=namespace)
    return seq
