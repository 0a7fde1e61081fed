"""Socket.IO events of live call monitoring (see ``calls/monitoring.py`` and docs/monitoring.md).

Supervisor (staff namespace, supervisors and admins only):
``monitor.start`` (receive-only offer → answer), ``monitor.mode`` (listen / whisper / barge),
``monitor.talk`` (the supervisor's talk offer or hang-up to a party), ``monitor.stop``.
Parties (the call's shopper and advisor): ``monitor.leg_offer`` (their send-only monitoring
leg), ``monitor.talk_answer`` (answer to the supervisor's talk offer), ``monitor.current``.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import ConfigDict, Field

from livedesk.calls.monitoring import (
    MONITORING,
    Mode,
    MonitoringHub,
    check_monitorable,
    note_on_timeline,
    require_supervisor,
)
from livedesk.consultations import service as consultations
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import Conflict, ValidationFailed
from livedesk.realtime import rooms
from livedesk.realtime.emit import SIO
from livedesk.realtime.protocol import EventContext, EventModel, EventSpec

# An SDP is a few kilobytes; the event size limit bounds it anyway.
SDP = Field(min_length=1, max_length=60_000)


class SdpEvent(EventModel):
    # An SDP ends with CRLF, and a browser refuses one whose last line lost it: relayed
    # descriptions are passed on exactly as sent.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, frozen=True)


class StartMonitoring(SdpEvent):
    consultation_id: uuid.UUID
    type: Literal["offer"]
    sdp: str = SDP


class MonitorRef(EventModel):
    monitor_id: uuid.UUID


class SetMode(EventModel):
    monitor_id: uuid.UUID
    mode: Literal["listen", "whisper", "barge"]


class Talk(SdpEvent):
    monitor_id: uuid.UUID
    to: Literal["advisor", "shopper"]
    type: Literal["offer", "hangup"]
    sdp: str | None = Field(default=None, max_length=60_000)


class LegOffer(SdpEvent):
    consultation_id: uuid.UUID
    type: Literal["offer"]
    sdp: str = SDP


class TalkAnswer(SdpEvent):
    consultation_id: uuid.UUID
    talk_id: uuid.UUID
    type: Literal["answer"]
    sdp: str = SDP


class CallRef(EventModel):
    consultation_id: uuid.UUID


def _hub(ctx: EventContext) -> MonitoringHub:
    return ctx.app[MONITORING]


async def start(ctx: EventContext, payload: StartMonitoring) -> dict[str, Any]:
    """A supervisor starts listening; the parties are told to open their legs."""
    staff = require_supervisor(ctx.staff)
    hub = _hub(ctx)
    notify = ctx.app[SETTINGS].monitoring_notify
    async with ctx.app[DB].read() as session:
        c = await check_monitorable(session, payload.consultation_id)
    try:
        monitor, answer, tracks = await hub.start(c, staff, ctx.sid, payload.sdp)
    except ValueError as exc:
        # aiortc raises ValueError for SDP it cannot use; nothing was written.
        raise ValidationFailed(f"The offer could not be used: {exc}", code="bad_offer") from None
    try:
        async with ctx.app[DB].transaction() as session:
            await note_on_timeline(session, c, staff, "listen", notified=notify)
    except Exception:
        # Not on the timeline, not monitored.
        await hub.stop(monitor.id, reason="failed")
        raise
    await hub.announce(c.id)
    return {
        "monitor_id": str(monitor.id),
        "consultation_id": str(c.id),
        "type": "answer",
        "sdp": answer.sdp,
        "tracks": tracks,
        "mode": monitor.mode,
    }


async def stop(ctx: EventContext, payload: MonitorRef) -> dict[str, Any]:
    staff = require_supervisor(ctx.staff)
    hub = _hub(ctx)
    monitor = hub.get(payload.monitor_id, staff.staff_id)
    await hub.stop(monitor.id)
    return {"stopped": True}


async def set_mode(ctx: EventContext, payload: SetMode) -> dict[str, Any]:
    """Whisper (the advisor hears the supervisor) or barge in (both do); back to listening."""
    staff = require_supervisor(ctx.staff)
    hub = _hub(ctx)
    monitor = hub.get(payload.monitor_id, staff.staff_id)
    mode: Mode = payload.mode
    if monitor.mode != mode and mode != "listen":
        async with ctx.app[DB].transaction() as session:
            c = await check_monitorable(session, monitor.consultation_id)
            await note_on_timeline(session, c, staff, mode, notified=ctx.app[SETTINGS].monitoring_notify)
    if await hub.set_mode(monitor, mode):
        await hub.announce(monitor.consultation_id)
    return {"monitor_id": str(monitor.id), "mode": monitor.mode}


async def talk(ctx: EventContext, payload: Talk) -> dict[str, Any]:
    """Relay the supervisor's talk offer (or hang-up) to one party, if the mode allows it."""
    staff = require_supervisor(ctx.staff)
    hub = _hub(ctx)
    monitor = hub.get(payload.monitor_id, staff.staff_id)
    message: dict[str, Any] = {
        "consultation_id": str(monitor.consultation_id),
        "talk_id": str(monitor.id),
        "type": payload.type,
    }
    if payload.type == "offer":
        hub.may_talk_to(monitor, payload.to)
        if not payload.sdp:
            raise ValidationFailed("field 'sdp': required with an offer", code="validation_failed")
        monitor.talking_to.add(payload.to)
        message["sdp"] = payload.sdp
    else:
        monitor.talking_to.discard(payload.to)
    room, namespace = hub.party_room(monitor.consultation_id, payload.to)
    await ctx.app[SIO].emit("monitor.voice", message, room=room, namespace=namespace)
    return {"relayed": True}


async def _party(ctx: EventContext, consultation_id: uuid.UUID) -> str:
    """Which party of the consultation the socket is ("shopper" or "advisor"); a supervisor
    reading along is not one."""
    async with ctx.app[DB].read() as session:
        c = await consultations.load_for_party(session, consultation_id, ctx, write=False)
    if ctx.shopper is not None:
        return "shopper"
    assert ctx.staff is not None
    if ctx.staff.staff_id != c.advisor_id:
        raise Conflict("Only the call's advisor or shopper may do this", code="not_a_party")
    return "advisor"


async def leg_offer(ctx: EventContext, payload: LegOffer) -> dict[str, Any]:
    """A party's browser offers its send-only monitoring leg (while someone monitors)."""
    participant = await _party(ctx, payload.consultation_id)
    try:
        answer = await _hub(ctx).open_leg(payload.consultation_id, participant, payload.sdp)
    except ValueError as exc:
        raise ValidationFailed(f"The offer could not be used: {exc}", code="bad_offer") from None
    return {"type": "answer", "sdp": answer.sdp, "participant": participant}


async def talk_answer(ctx: EventContext, payload: TalkAnswer) -> dict[str, Any]:
    """A party answers the supervisor's talk offer; only the party it was offered to may."""
    participant = await _party(ctx, payload.consultation_id)
    hub = _hub(ctx)
    monitor = hub.monitors.get(payload.talk_id)
    if (
        monitor is None
        or monitor.consultation_id != payload.consultation_id
        or participant not in monitor.talking_to
    ):
        raise Conflict("No such talk offer to you", code="no_talk")
    await ctx.app[SIO].emit(
        "monitor.talk_answer",
        {"monitor_id": str(monitor.id), "from": participant, "type": "answer", "sdp": payload.sdp},
        to=monitor.sid,
        namespace=rooms.STAFF_NS,
    )
    return {"relayed": True}


async def current(ctx: EventContext, payload: CallRef) -> dict[str, Any]:
    """The call's monitoring state, for a party's page that (re)connects."""
    await _party(ctx, payload.consultation_id)
    return _hub(ctx).state(payload.consultation_id)


async def on_disconnect(ctx: EventContext) -> None:
    """A supervisor's socket went: its monitors end (the page re-starts them on reconnect)."""
    if ctx.staff is not None and ctx.app.get(MONITORING) is not None:
        await ctx.app[MONITORING].stop_for_sid(ctx.sid)


SHOPPER: list[EventSpec[Any]] = [
    EventSpec("monitor.leg_offer", LegOffer, leg_offer),
    EventSpec("monitor.talk_answer", TalkAnswer, talk_answer),
    EventSpec("monitor.current", CallRef, current),
]
STAFF: list[EventSpec[Any]] = [
    EventSpec("monitor.start", StartMonitoring, start),
    EventSpec("monitor.stop", MonitorRef, stop),
    EventSpec("monitor.mode", SetMode, set_mode),
    EventSpec("monitor.talk", Talk, talk),
    EventSpec("monitor.leg_offer", LegOffer, leg_offer),
    EventSpec("monitor.talk_answer", TalkAnswer, talk_answer),
    EventSpec("monitor.current", CallRef, current),
]
