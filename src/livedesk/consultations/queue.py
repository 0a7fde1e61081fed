"""The queue: offering waiting consultations to advisors, moving unanswered offers on,
giving up on consultations nobody took, and telling each waiting shopper where they stand."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.consultations import service, wait_estimate

# Re-exported: routing_runner sends the places after each pass.
from livedesk.consultations.outgoing import QUEUE_POSITION as QUEUE_POSITION
from livedesk.consultations.schemas import QueuePosition
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import TooManyRequests
from livedesk.models import (
    AdvisorPresence,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    PresenceStatus,
    Role,
    ShopperConnection,
    Staff,
)
from livedesk.settings import Settings

S = ConsultationStatus
DEFAULT_HANDLE_SECONDS = 300.0


# --- surge protection -------------------------------------------------------------------------
# Visitor tokens are free, so one client can be any number of shoppers: what it may have
# waiting at once is counted by its address and its network (/24 for IPv4, /64 for IPv6, the
# block one subscriber or one host is usually given). The consultation keeps keyed hashes of
# both (never the address itself) for as long as it waits.
ORIGIN_ADDRESS, ORIGIN_NETWORK = "origin_address", "origin_network"


def network_of(address: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) network of an address; anything unparsable is its own."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 64}", strict=False))


@dataclass(frozen=True)
class Origin:
    """Where a queue join comes from, as keyed hashes of the address and its network."""

    address: str
    network: str

    @classmethod
    def of(cls, address: str, secret: str) -> Origin:
        def tag(kind: str, value: str) -> str:
            return hmac.new(secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]

        return cls(address=tag("address", address), network=tag("network", network_of(address)))

    @property
    def lock_key(self) -> int:
        # A signed 32-bit key for pg_advisory_xact_lock(int, int), from the network's tag.
        return int(self.network[:8], 16) - 2**31


async def admit(session: AsyncSession, settings: Settings, shopper_id: uuid.UUID, origin: Origin) -> bool:
    """May this shopper take a place in the queue? Raises ``TooManyRequests`` when their
    address or network already has its share waiting, or the queue is full. Returns True when
    the shopper already has a consultation under way (joining again answers with it, so it
    costs no place)."""
    if await session.scalar(
        select(Consultation.id)
        .where(Consultation.shopper_id == shopper_id, Consultation.status.in_(service.IN_PROGRESS))
        .limit(1)
    ):
        return True
    if session.get_bind().dialect.name == "postgresql":
        # Two joins from one network at once would both see room for one more (SQLite's write
        # transaction is exclusive already).
        await session.execute(text("SELECT pg_advisory_xact_lock(727002, :k)"), {"k": origin.lock_key})
    waiting = Consultation.status.in_((S.QUEUED, S.OFFERED))
    caps = (
        (settings.queue_waiting_per_address, ORIGIN_ADDRESS, origin.address, "queue_limit_address"),
        (settings.queue_waiting_per_network, ORIGIN_NETWORK, origin.network, "queue_limit_network"),
    )
    for cap, key, value, code in caps:
        if not cap:
            continue
        count = await session.scalar(
            select(func.count())
            .select_from(Consultation)
            .where(waiting, Consultation.extra[key].as_string() == value)
        )
        if int(count or 0) >= cap:
            raise TooManyRequests(
                f"{cap} shoppers from your network are already waiting; please try again later",
                code=code,
                retry_after=60,
            )
    if settings.queue_max_waiting:
        total = await session.scalar(select(func.count()).select_from(Consultation).where(waiting))
        if int(total or 0) >= settings.queue_max_waiting:
            raise TooManyRequests(
                "The queue is full right now; please try again later or book a call",
                code="queue_full",
                retry_after=60,
            )
    return False


def mark_origin(c: Consultation, origin: Origin) -> None:
    """Tag a new consultation with where it came from (counted by ``admit`` while it waits)."""
    c.extra = {**(c.extra or {}), ORIGIN_ADDRESS: origin.address, ORIGIN_NETWORK: origin.network}


# --- queue places -----------------------------------------------------------------------------
# (Routing decisions are consultations/dispatch.py's, one change at a time.)


# Handle times that describe an advisor's pace: her latest ones, not older than this.
RECENT_HANDLES = 20
RECENT_DAYS = 30


def _spans(rows: Iterable[tuple[datetime | None, datetime | None]]) -> list[float]:
    return [(ended - accepted).total_seconds() for accepted, ended in rows if ended and accepted]


async def average_handle_seconds(session: AsyncSession) -> float:
    """The typical handle time across advisors: for those with no history of their own."""
    rows = (
        await session.execute(
            select(Consultation.accepted_at, Consultation.ended_at)
            .where(Consultation.accepted_at.is_not(None), Consultation.ended_at.is_not(None))
            .order_by(Consultation.ended_at.desc())
            .limit(50)
        )
    ).all()
    spans = _spans(rows)
    return sum(spans) / len(spans) if spans else DEFAULT_HANDLE_SECONDS


async def _desks(session: AsyncSession, settings: Settings) -> list[wait_estimate.Desk]:
    """Advisors who will take consultations (available, or busy in a call), with what they
    hold now and their own recent handle times."""
    ids = list(
        (
            await session.scalars(
                select(AdvisorPresence.staff_id)
                .join(Staff, Staff.id == AdvisorPresence.staff_id)
                .where(
                    AdvisorPresence.status.in_((PresenceStatus.AVAILABLE, PresenceStatus.BUSY)),
                    Staff.role == Role.ADVISOR,
                    Staff.active.is_(True),
                )
            )
        ).all()
    )
    if not ids:
        return []
    now = utcnow()
    fallback = await average_handle_seconds(session)
    history = (
        await session.execute(
            select(Consultation.advisor_id, Consultation.accepted_at, Consultation.ended_at)
            .where(
                Consultation.advisor_id.in_(ids),
                Consultation.accepted_at.is_not(None),
                Consultation.ended_at >= now - timedelta(days=RECENT_DAYS),
            )
            .order_by(Consultation.ended_at.desc())
            .limit(RECENT_HANDLES * len(ids))
        )
    ).all()
    spans: dict[uuid.UUID, list[float]] = {}
    for advisor_id, accepted, ended in history:
        if advisor_id is None:
            continue
        mine = spans.setdefault(advisor_id, [])
        if len(mine) < RECENT_HANDLES:
            mine.extend(_spans([(accepted, ended)]))
    held = (
        await session.execute(
            select(Consultation.advisor_id, Consultation.kind, Consultation.accepted_at).where(
                Consultation.status == S.ACTIVE, Consultation.advisor_id.in_(ids)
            )
        )
    ).all()
    calls: dict[uuid.UUID, float] = {}
    chats: dict[uuid.UUID, list[float]] = {}
    for advisor_id, kind, accepted in held:
        if advisor_id is None:
            continue
        elapsed = max(0.0, (now - accepted).total_seconds()) if accepted else 0.0
        if kind == ConsultationKind.CHAT:
            chats.setdefault(advisor_id, []).append(elapsed)
        else:
            calls[advisor_id] = max(calls.get(advisor_id, 0.0), elapsed)
    desks = []
    for staff_id in ids:
        own = spans.get(staff_id)
        desks.append(
            wait_estimate.Desk(
                staff_id=staff_id,
                handle_seconds=sum(own) / len(own) if own else fallback,
                call_elapsed=calls.get(staff_id),
                chats_elapsed=tuple(chats.get(staff_id, ())),
            )
        )
    return desks


async def positions(session: AsyncSession, settings: Settings) -> list[tuple[uuid.UUID, QueuePosition]]:
    """Each waiting shopper's place in the queue and estimated wait (consultations/
    wait_estimate.py). Only shoppers with a page open count: one who has gone (their place
    is given up after a grace period) or a client that queued and dropped its sockets does
    not push the others back meanwhile."""
    present = exists().where(ShopperConnection.shopper_id == Consultation.shopper_id)
    # Plain columns, not entities: a long queue is read on every change.
    waiting = (
        await session.execute(
            select(
                Consultation.id,
                Consultation.shopper_id,
                Consultation.kind,
                Consultation.status,
                Consultation.offered_to_id,
                Consultation.nominated_advisor_id,
                Consultation.wait_for_nominated,
                Consultation.passed_over,
            )
            .where(Consultation.status.in_((S.QUEUED, S.OFFERED)), present)
            .order_by(Consultation.queued_at)
        )
    ).all()
    if not waiting:
        return []
    waiters = [
        wait_estimate.Waiter(
            consultation_id=c.id,
            kind=c.kind,
            offered_to=c.offered_to_id if c.status == S.OFFERED else None,
            nominated=c.nominated_advisor_id,
            wait_for_nominated=c.wait_for_nominated,
            passed_over=frozenset(uuid.UUID(s) for s in c.passed_over or ()),
        )
        for c in waiting
    ]
    desks = await _desks(session, settings)
    estimates = wait_estimate.estimate(waiters, desks, settings.max_chats_per_advisor)
    # Nobody who could take her is online: no pace to go by, so a typical handle time per
    # place (the page says no advisor is online beside it).
    unknown = any(e.seconds is None for e in estimates.values())
    typical = await average_handle_seconds(session) if unknown else 0.0
    places = []
    for index, c in enumerate(waiting, start=1):
        found = estimates[c.id]
        seconds = found.seconds if found.seconds is not None else int(index * typical)
        places.append(
            (
                c.shopper_id,
                # Built from our own values: no validation to pay a thousand times.
                QueuePosition.model_construct(
                    consultation_id=c.id,
                    position=index,
                    estimated_wait_seconds=seconds,
                    advisors_online=found.advisors,
                ),
            )
        )
    return places
