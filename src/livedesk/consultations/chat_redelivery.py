"""Chat messages whose live fan-out was lost reach this process's sockets anyway.

A message is committed and acknowledged before it is fanned out (``chat.send``), so the
fan-out can be lost with a committed message: the sender's process dies between its ack and
its Redis publish, or Redis refuses the publish or drops it in a blip (``realtime/
redis_fanout.py`` logs it; the sender's own process has delivered to its sockets already).
The other party then saw the message only once a later one exposed the gap.

Every process therefore compares, once a second, the stored ``last_seq`` of the open
consultations its sockets take part in with the newest sequence its fan-out delivered here
(``LocalFanout.delivered``). A sequence that is still missing a tick after it was first seen
(so never one whose fan-out is merely under way) is read from the database and emitted to this
process's sockets of that party only — no Redis needed, so this also carries chat while Redis
is down. Clients drop a sequence they already have, so a repeat costs nothing but bytes.

The cost when nothing is lost: one indexed read of a few columns per second per process (none
when it has no sockets), and a dictionary update per delivered message.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.consultations.chat_schemas import ChatMessageOut
from livedesk.consultations.parties import CHAT_OPEN
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB
from livedesk.kit.logging import get_logger
from livedesk.kit.periodic import Periodic
from livedesk.models import Consultation, Message
from livedesk.realtime import rooms
from livedesk.realtime.emit import SIO
from livedesk.realtime.fanout import CHAT_MESSAGE, LocalFanout

log = get_logger("livedesk.chat")

EVERY_SECONDS = 1.0
# At most this many of the newest missing messages are re-sent per consultation and tick: a
# client missing older ones sees the gap and fetches it with chat.sync.
REDELIVER_MAX = 50
# A consultation first seen here (a socket just joined, an offer just accepted) may already hold
# a message whose fan-out was lost: messages this recent are re-sent if no fan-out arrives by
# the next tick (older ones the socket fetched with chat.sync when it joined).
RECENT_SECONDS = 5.0
# Ids per IN (...) list: well under every driver's parameter limit.
CHUNK = 500

_Key = tuple[str, str]  # (namespace, consultation id)


@dataclass
class _Local:
    """Whose sockets this process holds, from its room names (realtime/rooms.py)."""

    shoppers: set[uuid.UUID] = field(default_factory=set)
    scoped: set[uuid.UUID] = field(default_factory=set)  # consultation-shopper:<id> rooms
    staff: set[uuid.UUID] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.shoppers or self.scoped or self.staff)


def _ids(names: Iterable[Any], prefix: str) -> set[uuid.UUID]:
    found = set()
    for name in names:
        if isinstance(name, str) and name.startswith(prefix):
            with contextlib.suppress(ValueError):
                found.add(uuid.UUID(name[len(prefix) :]))
    return found


def _prefix(room_of: Any) -> str:
    """The part of a room's name before its id ("shopper:" of "shopper:<id>")."""
    zero = uuid.UUID(int=0)
    prefix: str = room_of(zero).removesuffix(str(zero))
    return prefix


SHOPPER_ROOM, SCOPED_ROOM, STAFF_ROOM = map(_prefix, (rooms.shopper, rooms.consultation_shopper, rooms.staff))


def local_parties(manager: LocalFanout) -> _Local:
    shopper_rooms = list(manager.rooms.get(rooms.SHOPPER_NS, {}))
    return _Local(
        shoppers=_ids(shopper_rooms, SHOPPER_ROOM),
        scoped=_ids(shopper_rooms, SCOPED_ROOM),
        staff=_ids(manager.rooms.get(rooms.STAFF_NS, {}), STAFF_ROOM),
    )


async def _open_consultations(session: AsyncSession, local: _Local) -> list[Row[Any]]:
    columns = (Consultation.id, Consultation.shopper_id, Consultation.advisor_id, Consultation.last_seq)
    found: dict[uuid.UUID, Any] = {}
    for column, ids in (
        (Consultation.shopper_id, local.shoppers),
        (Consultation.id, local.scoped),
        (Consultation.advisor_id, local.staff),
    ):
        ordered = sorted(ids)
        for start in range(0, len(ordered), CHUNK):
            chunk = ordered[start : start + CHUNK]
            result = await session.execute(
                select(*columns).where(column.in_(chunk), Consultation.status.in_(CHAT_OPEN))
            )
            found.update((row.id, row) for row in result)
    return list(found.values())


@dataclass
class _Missing:
    key: _Key
    row: Row[Any]
    after: int
    upto: int
    since: datetime | None = None  # only messages stored after this (a first sight)


class Redelivery:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        # (namespace, consultation) → a last_seq seen at the previous tick but not delivered.
        self.suspect: dict[_Key, int] = {}
        # (namespace, consultation) → its last_seq when this process first saw it.
        self.first: dict[_Key, int] = {}

    @property
    def manager(self) -> LocalFanout:
        manager: LocalFanout = self.app[SIO].manager
        return manager

    async def tick(self) -> int:
        """One comparison; returns how many messages were re-sent."""
        manager = self.manager
        local = local_parties(manager)
        if not local:
            manager.delivered.clear()
            self.suspect.clear()
            self.first.clear()
            return 0
        async with self.app[DB].read() as session:
            rows = await _open_consultations(session, local)
            missing = self._compare(manager, local, rows)
            messages = [(m, await _messages(session, m)) for m in missing]
        sent = 0
        for m, found in messages:
            namespace = m.key[0]
            room: rooms.Room = (
                rooms.shopper_of(m.row.shopper_id, m.row.id)
                if namespace == rooms.SHOPPER_NS
                else rooms.staff(m.row.advisor_id)
            )
            for message in found:
                out = ChatMessageOut.of(message).model_dump(mode="json")
                await manager.emit_local(CHAT_MESSAGE, out, namespace, room)
                sent += 1
            if not found:
                continue
            # A first sight's re-send is often of a fan-out that was merely late: not a warning.
            (log.info if m.since is not None else log.warning)(
                "chat fan-out lost; redelivered",
                consultation_id=str(m.row.id),
                namespace=namespace,
                after_seq=m.after,
                upto_seq=m.upto,
                count=len(found),
            )
        return sent

    def _compare(self, manager: LocalFanout, local: _Local, rows: list[Row[Any]]) -> list[_Missing]:
        delivered, suspect = manager.delivered, self.suspect
        seen: set[_Key] = set()
        missing: list[_Missing] = []
        for row in rows:
            namespaces = []
            if row.shopper_id in local.shoppers or row.id in local.scoped:
                namespaces.append(rooms.SHOPPER_NS)
            if row.advisor_id is not None and row.advisor_id in local.staff:
                namespaces.append(rooms.STAFF_NS)
            for namespace in namespaces:
                key = (namespace, str(row.id))
                seen.add(key)
                have = delivered.get(key)
                if have is None:
                    delivered[key] = self.first[key] = row.last_seq
                    continue
                first = self.first.pop(key, None)
                if first is not None and first == have and first > 0:
                    # No fan-out since the first sight: its newest messages may be lost ones.
                    since = utcnow() - timedelta(seconds=RECENT_SECONDS)
                    missing.append(_Missing(key, row, 0, first, since))
                target = suspect.pop(key, 0)
                if target > have:
                    missing.append(_Missing(key, row, have, target))
                if row.last_seq > max(have, target):
                    suspect[key] = row.last_seq
        # Forget consultations no local socket takes part in any more (a room's fan-out may
        # still arrive for a moment after its last socket left).
        for key in [k for k in delivered if k not in seen]:
            del delivered[key]
        for table in (suspect, self.first):
            for key in [k for k in table if k not in seen]:
                del table[key]
        return missing


async def _messages(session: AsyncSession, m: _Missing) -> list[Message]:
    query = select(Message).where(
        Message.consultation_id == m.row.id,
        Message.seq > max(m.after, m.upto - REDELIVER_MAX),
        Message.seq <= m.upto,
    )
    if m.since is not None:
        query = query.where(Message.created_at > m.since)
    return list(await session.scalars(query.order_by(Message.seq)))


REDELIVERY = web.AppKey("chat_redelivery", Redelivery)


async def redelivery_ctx(app: web.Application) -> AsyncIterator[None]:
    redelivery = Redelivery(app)
    app[REDELIVERY] = redelivery
    # A database blip fails one tick (logged); the next looks again.
    job = Periodic("chat.redelivery", redelivery.tick, every=EVERY_SECONDS, quiet=True)
    job.start()
    yield
    await job.stop()
