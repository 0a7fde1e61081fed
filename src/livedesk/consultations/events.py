"""Socket.IO events of the consultation lifecycle and the queue. Handlers only parse,
authorise and call the service; the transaction is theirs, events leave after it commits."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.consultations import queue, routing_runner, service
from livedesk.consultations.connections import SHOPPER_CONNECTIONS
from livedesk.consultations.schemas import (
    CloseConsultation,
    ConsultationRef,
    Escalate,
    QueueJoin,
    QueuePosition,
    QueueUpdate,
)
from livedesk.identity import is_party
from livedesk.kit.background import BACKGROUND
from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.errors import Forbidden
from livedesk.models import ConsultationKind, Role
from livedesk.realtime.process import PROCESS
from livedesk.realtime.protocol import EventContext, EventSpec, NoPayload
from livedesk.surveys import mail as survey_mail
from livedesk.surveys import satisfaction
from livedesk.surveys import service as survey_service


async def queue_join(ctx: EventContext, payload: QueueJoin) -> dict[str, Any]:
    shopper = ctx.require_shopper()
    if shopper.scoped:
        raise Forbidden(
            "This link opens one booked call; start a new visit to talk to us again", code="token_scoped"
        )
    settings, limits = ctx.app[SETTINGS], ctx.app[RATE_LIMITS]
    await limits.hit(
        settings.queue_rate_limit,
        "queue.join",
        str(shopper.shopper_id),
        message="Too many queue joins; wait a moment",
    )
    # Visitor tokens are free: the address and its network pay for the joins too.
    origin = queue.Origin.of(ctx.address, settings.secret_key.get_secret_value())
    busy = "Too many requests from your network; wait a moment"
    await limits.hit_all(
        settings.queue_address_rate_limit, "queue.join.address", origin.address, message=busy
    )
    await limits.hit_all(
        settings.queue_network_rate_limit, "queue.join.network", origin.network, message=busy
    )
    async with ctx.app[DB].transaction() as session:
        intake = None
        if payload.survey_response_id is not None:
            intake, hints = await survey_service.response_for_queue(
                session, payload.survey_response_id, shopper.shopper_id
            )
            payload = payload.with_hints(hints)
        # Refused before anything is written, so a refused join never takes a place.
        returning = await queue.admit(session, settings, shopper.shopper_id, origin)
        c = await service.join_queue(session, shopper.shopper_id, payload)
        if not returning:
            queue.mark_origin(c, origin)
        if intake is not None:
            await survey_service.link_to_consultation(session, intake, c)
        result = service.out(c)
    await routing_runner.kick(ctx.app, consultation=c.id)
    return result


async def queue_leave(ctx: EventContext, payload: ConsultationRef) -> dict[str, Any]:
    async with ctx.app[DB].transaction() as session:
        c = await service.load_for_party(session, payload.consultation_id, ctx.actor)
        offered_to = c.offered_to_id
        await service.leave_queue(session, c)
        result = service.out(c)
    # The places behind move up; an advisor it was offered to is free again.
    await routing_runner.kick(ctx.app, advisors=(offered_to,), general=False)
    return result


async def queue_update(ctx: EventContext, payload: QueueUpdate) -> dict[str, Any]:
    ctx.require_shopper()
    async with ctx.app[DB].transaction() as session:
        c = await service.load_for_party(session, payload.consultation_id, ctx.actor)
        await service.set_wait_for_nominated(session, c, payload.wait_for_nominated)
        result = service.out(c)
    await routing_runner.kick(ctx.app, consultation=c.id)
    return result


async def current(ctx: EventContext, _payload: NoPayload) -> list[dict[str, Any]]:
    """The caller's open consultations (after a reload or reconnect), offers included."""
    async with ctx.app[DB].read() as session:
        if ctx.shopper is None:
            rows = await service.open_for_advisor(session, ctx.require_staff().staff_id)
            return [service.out(c) for c in rows]
        rows = [
            c
            for c in await service.open_for_shopper(session, ctx.shopper.shopper_id)
            if is_party(ctx.shopper, c, write=False)
        ]
        # A page that comes back needs its place in the queue now, not at the next change:
        # the place last told (routing_runner keeps it), or, not told yet, the whole queue's.
        places = await _places(ctx.app, session, [c.id for c in rows if c.status in service.WAITING])
        result = []
        for c in rows:
            item = service.out(c)
            if c.id in places:
                item["queue"] = places[c.id].model_dump(mode="json")
            result.append(item)
        return result


async def _places(
    app: web.Application, session: AsyncSession, waiting: list[uuid.UUID]
) -> dict[uuid.UUID, QueuePosition]:
    if not waiting:
        return {}
    places: dict[uuid.UUID, QueuePosition] = {}
    runner = app.get(routing_runner.RUNNER)
    if runner is not None:
        for consultation_id in waiting:
            place = await runner.place_of(consultation_id)
            if place is not None:
                places[consultation_id] = place
    if len(places) < len(waiting):
        listed = await queue.positions(session, app[SETTINGS])
        places = {place.consultation_id: place for _, place in listed}
    return places


async def get(ctx: EventContext, payload: ConsultationRef) -> dict[str, Any]:
    async with ctx.app[DB].read() as session:
        c = await service.load_for_party(session, payload.consultation_id, ctx.actor, write=False)
        return service.out(c)


async def offer_accept(ctx: EventContext, payload: ConsultationRef) -> dict[str, Any]:
    staff = ctx.require_staff()
    async with ctx.app[DB].transaction() as session:
        c = await service.load_for_party(session, payload.consultation_id, ctx.actor)
        await service.accept_offer(session, c, staff.staff_id)
        result = service.out(c)
    # With a chat accepted she may take another (no offer in hand any more).
    await routing_runner.kick(ctx.app, advisors=(staff.staff_id,))
    return result


async def offer_decline(ctx: EventContext, payload: ConsultationRef) -> dict[str, Any]:
    staff = ctx.require_staff()
    async with ctx.app[DB].transaction() as session:
        c = await service.load_for_party(session, payload.consultation_id, ctx.actor)
        await service.decline_offer(session, c, staff.staff_id, "declined")
        result = service.out(c)
    await routing_runner.kick(ctx.app, consultation=c.id, advisors=(staff.staff_id,))
    return result


async def end(ctx: EventContext, payload: ConsultationRef) -> dict[str, Any]:
    async with ctx.app[DB].transaction() as session:
        c = await service.load_for_party(session, payload.consultation_id, ctx.actor)
        await service.end(session, c, ctx.actor)
        result = service.out(c)
    await routing_runner.kick(ctx.app, advisors=(c.advisor_id,), general=c.advisor_id is None)
    return result


async def close(ctx: EventContext, payload: CloseConsultation) -> dict[str, Any]:
    staff = ctx.require_staff()
    async with ctx.app[DB].transaction() as session:
        c = await service.load_for_party(session, payload.consultation_id, ctx.actor)
        await service.close(session, c, staff.staff_id, payload.notes)
        invited = await satisfaction.invite_after_close(session, c)
        result = service.out(c)
    if invited:
        survey_mail.send_soon(ctx.app, c.id)
    await routing_runner.kick(ctx.app, advisors=(staff.staff_id,))
    return result


async def escalate(ctx: EventContext, payload: Escalate) -> dict[str, Any]:
    async with ctx.app[DB].transaction() as session:
        c = await service.load_for_party(session, payload.consultation_id, ctx.actor)
        await service.escalate(session, c, ConsultationKind(payload.kind), ctx.actor)
        return service.out(c)


def _advisor_only(handler: Any) -> Any:
    async def wrapped(ctx: EventContext, payload: Any) -> Any:
        staff = ctx.require_staff()
        if staff.role != Role.ADVISOR:
            raise Forbidden("Only advisors take consultations")
        return await handler(ctx, payload)

    return wrapped


SHOPPER: list[EventSpec[Any]] = [
    EventSpec("queue.join", QueueJoin, queue_join),
    EventSpec("queue.leave", ConsultationRef, queue_leave),
    EventSpec("queue.update", QueueUpdate, queue_update),
    EventSpec("consultation.current", NoPayload, current),
    EventSpec("consultation.get", ConsultationRef, get),
    EventSpec("consultation.end", ConsultationRef, end),
    EventSpec("call.escalate", Escalate, escalate),
]

STAFF: list[EventSpec[Any]] = [
    EventSpec("offer.accept", ConsultationRef, _advisor_only(offer_accept)),
    EventSpec("offer.decline", ConsultationRef, _advisor_only(offer_decline)),
    EventSpec("consultation.current", NoPayload, current),
    EventSpec("consultation.get", ConsultationRef, get),
    EventSpec("consultation.end", ConsultationRef, end),
    EventSpec("consultation.close", CloseConsultation, close),
    EventSpec("call.escalate", Escalate, escalate),
]


async def on_connect(ctx: EventContext) -> None:
    """Count the shopper's open pages (delivery itself goes to per-person rooms; a
    reconnecting client asks consultation.current and chat.sync)."""
    if ctx.shopper is None:
        return
    await ctx.app[SHOPPER_CONNECTIONS].opened(ctx.sid, ctx.shopper.shopper_id, ctx.app[PROCESS].id)
    # Only shoppers with a page open hold a place: places may move (recomputed within a second).
    routing_runner.places_moved(ctx.app)


async def on_disconnect(ctx: EventContext) -> None:
    """A shopper's queue place survives a reload or a blip; with no page open for the grace
    period they have left, and the place is given up."""
    if ctx.shopper is None:
        return
    shopper_id = ctx.shopper.shopper_id
    await ctx.app[SHOPPER_CONNECTIONS].closed(ctx.sid)
    routing_runner.places_moved(ctx.app)
    ctx.app[BACKGROUND].spawn(
        abandon_after_grace(ctx.app, {shopper_id}, ctx.app[SETTINGS].queue_leave_grace_seconds),
        name="queue-leave-grace",
    )


async def abandon_after_grace(app: web.Application, shopper_ids: set[uuid.UUID], grace: float) -> None:
    if grace:
        await asyncio.sleep(grace)
    abandoned = 0
    # One read first: after a process dies its thousands of shoppers come here at once, and
    # nearly all are back elsewhere or were never waiting (a transaction each held up the
    # reconnects). Only those the read names are judged, each under its row lock.
    async with app[DB].read() as session:
        waiting = await service.waiting_without_page(session, shopper_ids)
    for shopper_id in waiting:
        async with app[DB].transaction() as session:
            abandoned += await service.abandon_if_gone(session, shopper_id)
    if abandoned:
        await routing_runner.kick(app)
