"""The chat store through the ORM session: for a database neither plain-SQL store serves (an
in-memory SQLite one, which the writer thread cannot share). Same rules as the others
(``chat_store.py``), the timeline line in the send's own transaction."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.consultations.chat_store import (
    RateLimitSpent,
    SendCommand,
    StoredMessage,
    _file_id,
    _no_such_file,
    file_reference,
    line_data,
    summary_of,
)
from livedesk.consultations.parties import authorise_chat_send
from livedesk.identity import authorise_party
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.kit.errors import NotFound
from livedesk.models import ChatFile, Consultation, Message, MessageKind, TimelineKind
from livedesk.timeline import new_event


class OrmChatStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def send(self, command: SendCommand) -> StoredMessage:
        async with self._db.transaction() as session:
            return await self._send(session, command)

    async def _send(self, session: AsyncSession, command: SendCommand) -> StoredMessage:
        # Lock the consultation first: a retry racing its original then waits and finds it.
        c = await session.get(Consultation, command.consultation_id, with_for_update=True)
        if c is None:
            raise NotFound("No such consultation", code="consultation_not_found")
        authorise_party(command.actor, c, write=True)
        existing = await session.scalar(
            select(Message).where(
                Message.consultation_id == c.id,
                Message.client_id == command.client_id,
                Message.sender_kind == command.sender,
            )
        )
        if existing is not None:
            return _stored(existing, c, created=False)
        authorise_chat_send(command.actor, c.status, c.advisor_id)
        if not command.allow_new:
            raise RateLimitSpent("Sending too fast; slow down")
        data = command.data
        if command.kind in (MessageKind.IMAGE, MessageKind.FILE):
            # FOR SHARE: the unsent-file sweep (file_sweep.py) holds the row FOR UPDATE
            # while it decides, so the file is either kept for this message or already gone.
            found = await session.get(ChatFile, _file_id(data), with_for_update={"read": True})
            if found is None or found.consultation_id != c.id:
                raise _no_such_file()
            data = file_reference(found.id, found.filename, found.content_type, found.size)
        # The row is locked, so the sequence cannot be handed out twice.
        c.last_seq += 1
        message = Message(
            id=uuid.uuid4(),
            consultation_id=c.id,
            seq=c.last_seq,
            client_id=command.client_id,
            sender_kind=command.sender,
            sender_staff_id=command.staff_id,
            kind=command.kind,
            body=command.body,
            data=data,
            created_at=utcnow(),
        )
        session.add(message)
        # The consultation row is locked and a merge re-points consultations too, so its
        # shopper_id is current: no need for append_event's merged-profile lookup here.
        session.add(
            new_event(
                c.shopper_id,
                TimelineKind.MESSAGE,
                summary_of(command.kind, command.body),
                line_data(message.seq, command.sender.value, command.kind.value),
                occurred_at=message.created_at,
                actor_staff_id=message.sender_staff_id,
                consultation_id=c.id,
                ref_id=str(message.id),
            )
        )
        c.timeline_seq = c.last_seq
        return _stored(message, c, created=True)

    async def close(self) -> None:
        return None


def _stored(m: Message, c: Consultation, *, created: bool) -> StoredMessage:
    return StoredMessage(
        id=m.id,
        consultation_id=m.consultation_id,
        seq=m.seq,
        client_id=m.client_id,
        sender=m.sender_kind,
        sender_staff_id=m.sender_staff_id,
        kind=m.kind,
        body=m.body,
        data=m.data,
        created_at=m.created_at,
        created=created,
        shopper_id=c.shopper_id,
        advisor_id=c.advisor_id,
    )
