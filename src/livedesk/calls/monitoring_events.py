"""Socket.IO events of live call monitoring (see ``calls/monitoring.py`` and docs/monitoring.md).

Supervisor (staff namespace, supervisors and admins only):
``monitor.start`` (receive-only offer → answer), ``monitor.mode`` (listen / whisper / barge),
``monitor.talk`` (the supervisor's talk offer or hang-up to a party), ``monitor.stop``.
Parties (the call's shopper and advisor): ``monitor.leg_offer`` (their send-only monitoring
leg), ``monitor.talk_answer`` (answer to the supervisor's talk offer), ``monitor.current``.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any, Literal

from aiohttp import web
from pydantic import ConfigDict, Field

from livedesk.calls.monitoring import (
    MONITORING,
    Mode,
    Monitor,
    MonitoringHub,
    RemoteMonitor,
    check_monitorable,
    note_on_timeline,
    require_supervisor,
)
from livedesk.calls.outgoing import MONITOR_TALK_ANSWER, MONITOR_VOICE
from livedesk.calls.placement import PLACEMENT
from livedesk.consultations import service as consultations
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import AppError, Conflict, ValidationFailed
from livedesk.realtime import rooms
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


# Operations run on the call's holder (calls/placement.py), from whichever process got the event.
START_OP, STOP_OP, MODE_OP, TALK_OP = "monitor.start", "monitor.stop", "monitor.mode", "monitor.talk"
LEG_OP, ANSWER_OP, STATE_OP = "monitor.leg", "monitor.talk_answer", "monitor.state"


async def start(ctx: EventContext, payload: StartMonitoring) -> dict[str, Any]:
    """A supervisor starts listening; the parties are told to open their legs. The monitor
    lives where the call's legs do, whichever process the supervisor's socket is on."""
    staff = require_supervisor(ctx.staff)
    hub = _hub(ctx)
    notify = ctx.app[SETTINGS].monitoring_notify
    async with ctx.app[DB].read() as session:
        c = await check_monitorable(session, payload.consultation_id)
    assert c.advisor_id is not None
    args = {
        "consultation_id": str(c.id),
        "shopper_id": str(c.shopper_id),
        "advisor_id": str(c.advisor_id),
        "staff_id": str(staff.staff_id),
        "sid": ctx.sid,
        "sdp": payload.sdp,
    }
    placement = ctx.app[PLACEMENT]
    started = await placement.run(c.id, START_OP, args)
    monitor_id = uuid.UUID(started["monitor_id"])
    if started["placement"] != placement.id:
        hub.remote[monitor_id] = RemoteMonitor(started["placement"], c.id, staff.staff_id, ctx.sid)
    try:
        async with ctx.app[DB].transaction() as session:
            await note_on_timeline(session, c, staff, "listen", notified=notify)
    except Exception:
        # Not on the timeline, not monitored.
        await _on_monitor(ctx, monitor_id, STOP_OP, {"reason": "failed"})
        raise
    return {
        "monitor_id": started["monitor_id"],
        "consultation_id": str(c.id),
        "type": "answer",
        "sdp": started["sdp"],
        "tracks": started["tracks"],
        "mode": started["mode"],
    }


async def _on_monitor(ctx: EventContext, monitor_id: uuid.UUID, op: str, args: dict[str, Any]) -> Any:
    """Run a supervisor's operation on their monitor, here or on the process holding it."""
    staff = require_supervisor(ctx.staff)
    hub = _hub(ctx)
    args = {**args, "monitor_id": str(monitor_id), "staff_id": str(staff.staff_id)}
    ref = hub.remote.get(monitor_id)
    if ref is None or monitor_id in hub.monitors:
        return await ctx.app[PLACEMENT].run_on(ctx.app[PLACEMENT].id, op, args)
    if ref.staff_id != staff.staff_id:
        raise Conflict("Not monitoring that call (here)", code="not_monitoring")
    try:
        result = await ctx.app[PLACEMENT].run_on(ref.holder, op, args)
    except AppError as exc:
        if exc.code in ("not_monitoring", "media_unavailable"):
            hub.remote.pop(monitor_id, None)
        raise
    if op == STOP_OP:
        hub.remote.pop(monitor_id, None)
    return result


async def stop(ctx: EventContext, payload: MonitorRef) -> dict[str, Any]:
    return dict(await _on_monitor(ctx, payload.monitor_id, STOP_OP, {"reason": "stopped"}))


async def set_mode(ctx: EventContext, payload: SetMode) -> dict[str, Any]:
    """Whisper (the advisor hears the supervisor) or barge in (both do); back to listening."""
    staff = require_supervisor(ctx.staff)
    changed = await _on_monitor(ctx, payload.monitor_id, MODE_OP, {"mode": payload.mode})
    mode: Mode = payload.mode
    if changed["changed"] and mode != "listen":
        async with ctx.app[DB].transaction() as session:
            c = await check_monitorable(session, uuid.UUID(changed["consultation_id"]))
            await note_on_timeline(session, c, staff, mode, notified=ctx.app[SETTINGS].monitoring_notify)
    return {"monitor_id": str(payload.monitor_id), "mode": changed["mode"]}


async def talk(ctx: EventContext, payload: Talk) -> dict[str, Any]:
    """Relay the supervisor's talk offer (or hang-up) to one party, if the mode allows it."""
    if payload.type == "offer" and not payload.sdp:
        raise ValidationFailed("field 'sdp': required with an offer", code="validation_failed")
    args = {"to": payload.to, "type": payload.type, "sdp": payload.sdp}
    return dict(await _on_monitor(ctx, payload.monitor_id, TALK_OP, args))


async def _party(ctx: EventContext, consultation_id: uuid.UUID) -> str:
    """Which party of the consultation the socket is ("shopper" or "advisor"); a supervisor
    reading along is not one."""
    async with ctx.app[DB].read() as session:
        c = await consultations.load_for_party(session, consultation_id, ctx.actor, write=False)
    if ctx.shopper is not None:
        return "shopper"
    assert ctx.staff is not None
    if ctx.staff.staff_id != c.advisor_id:
        raise Conflict("Only the call's advisor or shopper may do this", code="not_a_party")
    return "advisor"


async def leg_offer(ctx: EventContext, payload: LegOffer) -> dict[str, Any]:
    """A party's browser offers its send-only leg (while someone monitors), to the holder."""
    participant = await _party(ctx, payload.consultation_id)
    args = {"consultation_id": str(payload.consultation_id), "participant": participant, "sdp": payload.sdp}
    answer = await ctx.app[PLACEMENT].run(payload.consultation_id, LEG_OP, args, claim=False)
    if answer is None:
        raise Conflict("Nobody monitors this call", code="not_monitored")
    return {
        "type": "answer",
        "sdp": answer["sdp"],
        "participant": participant,
        "placement": answer["placement"],
    }


async def talk_answer(ctx: EventContext, payload: TalkAnswer) -> dict[str, Any]:
    """A party answers the supervisor's talk offer; only the party it was offered to may."""
    participant = await _party(ctx, payload.consultation_id)
    args = {
        "consultation_id": str(payload.consultation_id),
        "talk_id": str(payload.talk_id),
        "participant": participant,
        "sdp": payload.sdp,
    }
    relayed = await ctx.app[PLACEMENT].run(payload.consultation_id, ANSWER_OP, args, claim=False)
    if relayed is None:
        raise Conflict("No such talk offer to you", code="no_talk")
    return dict(relayed)


async def current(ctx: EventContext, payload: CallRef) -> dict[str, Any]:
    """The call's monitoring state, for a party's page that (re)connects."""
    await _party(ctx, payload.consultation_id)
    args = {"consultation_id": str(payload.consultation_id)}
    state = await ctx.app[PLACEMENT].run(payload.consultation_id, STATE_OP, args, claim=False)
    return dict(state) if state is not None else _hub(ctx).state(payload.consultation_id)


async def placement_of(ctx: EventContext, payload: CallRef) -> dict[str, Any]:
    """Where the call's legs live now (opaque): a page that reconnects compares it with its
    leg's ``placement`` and offers again when it changed (the holder died; taken over here)."""
    await _party(ctx, payload.consultation_id)
    holder = await ctx.app[PLACEMENT].holder(payload.consultation_id, claim=False)
    return {"consultation_id": str(payload.consultation_id), "placement": holder}


async def on_disconnect(ctx: EventContext) -> None:
    """A supervisor's socket went: its monitors end, here or on their holder (the page
    re-starts them on reconnect)."""
    if ctx.staff is None or ctx.app.get(MONITORING) is None:
        return
    hub = ctx.app[MONITORING]
    await hub.stop_for_sid(ctx.sid)
    for monitor_id, ref in list(hub.remote.items()):
        if ref.sid == ctx.sid:
            hub.remote.pop(monitor_id, None)
            args = {"monitor_id": str(monitor_id), "staff_id": str(ref.staff_id), "reason": "disconnected"}
            with contextlib.suppress(AppError):
                await ctx.app[PLACEMENT].run_on(ref.holder, STOP_OP, args)


def register_operations(app: web.Application) -> None:
    """What the call's holder does for the other processes (and for itself)."""
    hub = app[MONITORING]

    def own(args: dict[str, Any]) -> Monitor:
        return hub.get(uuid.UUID(args["monitor_id"]), uuid.UUID(args["staff_id"]))

    async def op_start(args: dict[str, Any]) -> dict[str, Any]:
        cid = uuid.UUID(args["consultation_id"])
        parties = (uuid.UUID(args["shopper_id"]), uuid.UUID(args["advisor_id"]))
        try:
            monitor, answer, tracks = await hub.start(
                cid, parties, uuid.UUID(args["staff_id"]), args["sid"], args["sdp"]
            )
        except ValueError as exc:
            # aiortc raises ValueError for SDP it cannot use; nothing was written.
            raise ValidationFailed(f"The offer could not be used: {exc}", code="bad_offer") from None
        await hub.announce(cid)
        return {
            "monitor_id": str(monitor.id),
            "sdp": answer.sdp,
            "tracks": tracks,
            "mode": monitor.mode,
            "placement": app[PLACEMENT].id,
        }

    async def op_stop(args: dict[str, Any]) -> dict[str, Any]:
        monitor = own(args)
        await hub.stop(monitor.id, reason=str(args.get("reason") or "stopped"))
        return {"stopped": True}

    async def op_mode(args: dict[str, Any]) -> dict[str, Any]:
        monitor = own(args)
        mode: Mode = args["mode"]
        changed = await hub.set_mode(monitor, mode)
        if changed:
            await hub.announce(monitor.consultation_id)
        return {"mode": monitor.mode, "changed": changed, "consultation_id": str(monitor.consultation_id)}

    async def op_talk(args: dict[str, Any]) -> dict[str, Any]:
        monitor = own(args)
        message: dict[str, Any] = {
            "consultation_id": str(monitor.consultation_id),
            "talk_id": str(monitor.id),
            "type": args["type"],
        }
        if args["type"] == "offer":
            hub.may_talk_to(monitor, args["to"])
            monitor.talking_to.add(args["to"])
            message["sdp"] = args["sdp"]
        else:
            monitor.talking_to.discard(args["to"])
        room, namespace = hub.party_room(monitor.consultation_id, args["to"])
        await hub.send(MONITOR_VOICE, message, room, namespace)
        return {"relayed": True}

    async def op_leg(args: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = await hub.open_leg(uuid.UUID(args["consultation_id"]), args["participant"], args["sdp"])
        except ValueError as exc:
            raise ValidationFailed(f"The offer could not be used: {exc}", code="bad_offer") from None
        return {"sdp": answer.sdp, "placement": app[PLACEMENT].id}

    async def op_talk_answer(args: dict[str, Any]) -> dict[str, Any]:
        monitor = hub.monitors.get(uuid.UUID(args["talk_id"]))
        if (
            monitor is None
            or str(monitor.consultation_id) != args["consultation_id"]
            or args["participant"] not in monitor.talking_to
        ):
            raise Conflict("No such talk offer to you", code="no_talk")
        await hub.send(
            MONITOR_TALK_ANSWER,
            {
                "monitor_id": str(monitor.id),
                "from": args["participant"],
                "type": "answer",
                "sdp": args["sdp"],
            },
            monitor.sid,
            rooms.STAFF_NS,
        )
        return {"relayed": True}

    async def op_state(args: dict[str, Any]) -> dict[str, Any]:
        return hub.state(uuid.UUID(args["consultation_id"]))

    placement = app[PLACEMENT]
    for op, handler in (
        (START_OP, op_start),
        (STOP_OP, op_stop),
        (MODE_OP, op_mode),
        (TALK_OP, op_talk),
        (LEG_OP, op_leg),
        (ANSWER_OP, op_talk_answer),
        (STATE_OP, op_state),
    ):
        placement.handle(op, handler)


SHOPPER: list[EventSpec[Any]] = [
    EventSpec("monitor.leg_offer", LegOffer, leg_offer),
    EventSpec("monitor.talk_answer", TalkAnswer, talk_answer),
    EventSpec("monitor.current", CallRef, current),
    EventSpec("leg.placement", CallRef, placement_of),
]
STAFF: list[EventSpec[Any]] = [
    EventSpec("monitor.start", StartMonitoring, start),
    EventSpec("monitor.stop", MonitorRef, stop),
    EventSpec("monitor.mode", SetMode, set_mode),
    EventSpec("monitor.talk", Talk, talk),
    EventSpec("monitor.leg_offer", LegOffer, leg_offer),
    EventSpec("monitor.talk_answer", TalkAnswer, talk_answer),
    EventSpec("monitor.current", CallRef, current),
    EventSpec("leg.placement", CallRef, placement_of),
]
