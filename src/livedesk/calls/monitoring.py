"""Live call monitoring: a supervisor listens to (and watches) a live call through livedesk's
server media leg, whispers to the advisor, or barges in.

Listening: the supervisor's browser offers a receive-only connection (audio and video for
each party); livedesk answers with ``MonitorTrack``s (calls/monitor_relay.py) that forward the
parties' encoded packets from their monitoring legs — opened by the parties' browsers when
told ``monitor.state {legs: true}`` and closed when the last supervisor stops. Several
supervisors on one call are several sets of subscriptions to the same two legs.

Whisper and barge-in: the supervisor's microphone goes browser to browser (audio only) — to
the advisor for a whisper, to the shopper too when barging in. livedesk relays the offer and
answer, after checking who may talk to whom.

A call's monitors and legs all live in one process, the call's holder (``calls/placement.py``):
a supervisor's start, stop, mode and talk, a party's leg offer and talk answer are handled there,
routed through Redis from whichever process holds the sender's socket. A supervisor's process
keeps a ``RemoteMonitor`` note of each monitor it started elsewhere, to route its later events
and its disconnect. The legs are the call's only legs: recording records the same ones.

This module holds the state and media (``MonitoringHub``) and the rules that need the
database (``check_monitorable``, ``note_on_timeline``); the Socket.IO handlers are in
``monitoring_events.py``.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.calls.legs import PARTICIPANTS, Leg, LegRegistry, rtc_configuration
from livedesk.calls.media import RECORDABLE, restrict_codecs
from livedesk.calls.monitor_relay import MonitorTrack, forward_picture_loss
from livedesk.calls.outgoing import LEG_MOVED, MONITOR_ENDED, MONITOR_STATE, MONITOR_VOICE
from livedesk.calls.placement import PLACEMENT
from livedesk.identity import Principal
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.db import Outgoing
from livedesk.kit.errors import Conflict, Forbidden, NotFound
from livedesk.kit.logging import get_logger
from livedesk.models import Consultation, ConsultationKind, ConsultationStatus, Role, TimelineKind
from livedesk.realtime import rooms
from livedesk.timeline import append_event

log = get_logger("livedesk.monitoring")

Mode = Literal["listen", "whisper", "barge"]
SUPERVISING = (Role.SUPERVISOR, Role.ADMIN)
# How often the hub checks that the calls it monitors are still going.
WATCH_SECONDS = 2.0
# Who hears the supervisor in each mode.
ALLOWED: dict[str, set[str]] = {"listen": set(), "whisper": {"advisor"}, "barge": {"advisor", "shopper"}}
MODE_SUMMARY = {
    "listen": "A supervisor listened to the call",
    "whisper": "A supervisor spoke to the advisor during the call",
    "barge": "A supervisor joined the call",
}


@dataclass
class Monitor:
    """One supervisor's monitoring of one call, from one socket."""

    id: uuid.UUID
    consultation_id: uuid.UUID
    staff_id: uuid.UUID
    sid: str
    pc: RTCPeerConnection
    tracks: list[MonitorTrack]
    mode: Mode = "listen"
    # Parties the supervisor's browser offered a talk connection to (answers accepted from them).
    talking_to: set[str] = field(default_factory=set)


def require_supervisor(staff: Principal | None) -> Principal:
    """Only supervisors and admins monitor, whisper or barge in."""
    if staff is None or staff.role not in SUPERVISING:
        raise Forbidden("Only supervisors and admins may monitor calls", code="forbidden")
    return staff


async def check_monitorable(session: AsyncSession, consultation_id: uuid.UUID) -> Consultation:
    """The consultation, if it is a live voice or video call with its advisor."""
    c = await session.get(Consultation, consultation_id)
    if c is None:
        raise NotFound("No such consultation", code="consultation_not_found")
    if c.status != ConsultationStatus.ACTIVE or c.kind == ConsultationKind.CHAT or c.advisor_id is None:
        raise Conflict("Only a live voice or video call can be monitored", code="not_in_call")
    return c


async def note_on_timeline(
    session: AsyncSession, c: Consultation, staff: Principal, mode: Mode, *, notified: bool
) -> None:
    """The shopper's timeline says a supervisor listened, whispered or joined (staff see it;
    whether the parties were told is kept with it)."""
    await append_event(
        session,
        c.shopper_id,
        TimelineKind.CALL,
        MODE_SUMMARY[mode],
        data={"action": f"monitoring.{mode}", "notified": notified or mode == "barge"},
        actor_staff_id=staff.staff_id,
        consultation_id=c.id,
    )


@dataclass(frozen=True)
class RemoteMonitor:
    """A monitor this process started on the call's holder, for a supervisor socket here."""

    holder: str
    consultation_id: uuid.UUID
    staff_id: uuid.UUID
    sid: str


class MonitoringHub:
    """This process's monitors, and the monitoring side of its legs."""

    def __init__(self, app: web.Application, legs: LegRegistry) -> None:
        self.app = app
        self.legs = legs
        self.monitors: dict[uuid.UUID, Monitor] = {}
        self.parties: dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID]] = {}
        self.remote: dict[uuid.UUID, RemoteMonitor] = {}
        legs.attachers.append(self.attach)

    async def attach(self, leg: Leg) -> None:
        """A leg of a monitored call was answered (for monitoring or recording): every monitor
        of the call forwards it."""
        monitors = self.of_call(leg.call_id)
        if not monitors:
            return
        leg.holds.add("monitoring")
        for monitor in monitors:
            for track in monitor.tracks:
                if track.participant == leg.participant and track.kind in leg.kinds:
                    track.attach(leg)

    # ---------------------------------------------------------------- queries

    def of_call(self, consultation_id: uuid.UUID) -> list[Monitor]:
        return [m for m in self.monitors.values() if m.consultation_id == consultation_id]

    def get(self, monitor_id: uuid.UUID, staff_id: uuid.UUID) -> Monitor:
        """The caller's own monitor (another supervisor's is as good as absent)."""
        monitor = self.monitors.get(monitor_id)
        if monitor is None or monitor.staff_id != staff_id:
            raise Conflict("Not monitoring that call (here)", code="not_monitoring")
        return monitor

    def state(self, consultation_id: uuid.UUID) -> dict[str, Any]:
        """What the parties' pages are told: open the legs or not, and — under the notify
        setting — whether anyone listens; barge-in is always said."""
        monitors = self.of_call(consultation_id)
        notify = self.app[SETTINGS].monitoring_notify
        barge = any(m.mode == "barge" for m in monitors)
        return {
            "consultation_id": str(consultation_id),
            "legs": bool(monitors),
            "listening": bool(monitors) if notify else barge,
            "barge": barge,
        }

    # ---------------------------------------------------------------- listening

    async def start(
        self,
        consultation_id: uuid.UUID,
        parties: tuple[uuid.UUID, uuid.UUID],
        staff_id: uuid.UUID,
        sid: str,
        offer_sdp: str,
    ) -> tuple[Monitor, RTCSessionDescription, list[dict[str, str]]]:
        """Answer the supervisor's receive-only offer. Its audio and video sections are taken
        in order: the first of each kind carries the shopper, the second the advisor. The
        call's legs already open (a recording's) are forwarded at once."""
        settings = self.app[SETTINGS]
        ice = rtc_configuration(settings, user=str(staff_id)).iceServers
        # One transport for all four sections: aiortc's default ("balanced") answer leaves a
        # second video section on a transport that never connects.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=ice, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            tracks: list[MonitorTrack] = []
            mapping: list[dict[str, str]] = []
            seen: dict[str, int] = {"audio": 0, "video": 0}
            for transceiver in pc.getTransceivers():
                kind = transceiver.kind
                if kind not in RECORDABLE or seen[kind] >= len(PARTICIPANTS):
                    continue
                participant = PARTICIPANTS[seen[kind]]
                seen[kind] += 1
                # Forwarded packets are VP8 and Opus: that is all the answer may offer.
                restrict_codecs(transceiver)
                track = MonitorTrack(participant, kind)
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendonly"
                forward_picture_loss(transceiver.sender, track)
                tracks.append(track)
                mapping.append({"mid": str(transceiver.mid), "participant": participant, "kind": kind})
            if not tracks:
                raise ValueError("the offer receives no audio or video")
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception:
            await pc.close()
            raise
        monitor = Monitor(
            id=uuid.uuid4(), consultation_id=consultation_id, staff_id=staff_id, sid=sid, pc=pc, tracks=tracks
        )
        self.monitors[monitor.id] = monitor
        self.parties[consultation_id] = parties

        @pc.on("connectionstatechange")
        async def changed() -> None:
            if pc.connectionState in ("failed", "closed") and monitor.id in self.monitors:
                await self.stop(monitor.id, reason="connection_lost")

        for track in tracks:
            leg = self.legs.get(consultation_id, track.participant)
            if leg is not None and not leg.closed.is_set():
                leg.holds.add("monitoring")
                track.attach(leg)
        local = pc.localDescription
        log.info("monitoring started", consultation_id=str(consultation_id), staff_id=str(staff_id))
        return monitor, RTCSessionDescription(sdp=local.sdp, type=local.type), mapping

    async def open_leg(
        self, consultation_id: uuid.UUID, participant: str, offer_sdp: str
    ) -> RTCSessionDescription:
        """A party's browser offers its send-only leg; every monitor of the call forwards it
        (and the recorder records it, if the call is being recorded)."""
        if not self.of_call(consultation_id):
            raise Conflict("Nobody monitors this call", code="not_monitored")
        settings = self.app[SETTINGS]
        return await self.legs.offer(
            consultation_id,
            participant,
            rtc_configuration(settings, user=participant),
            offer_sdp,
            unneeded=Conflict("Nobody monitors this call", code="not_monitored"),
        )

    # ---------------------------------------------------------------- talking

    async def set_mode(self, monitor: Monitor, mode: Mode) -> bool:
        """Listen, whisper (to the advisor) or barge in (both hear); True if it changed. A
        party the new mode no longer lets hear the supervisor gets the talk hung up."""
        if monitor.mode == mode:
            return False
        monitor.mode = mode
        allowed = ALLOWED[mode]
        dropped = monitor.talking_to - allowed
        monitor.talking_to &= allowed
        await self.hang_up(monitor, dropped)
        return True

    async def hang_up(self, monitor: Monitor, parties: set[str]) -> None:
        for party in sorted(parties):
            room, namespace = self.party_room(monitor.consultation_id, party)
            await self.send(
                MONITOR_VOICE,
                {
                    "consultation_id": str(monitor.consultation_id),
                    "talk_id": str(monitor.id),
                    "type": "hangup",
                },
                room,
                namespace,
            )

    def may_talk_to(self, monitor: Monitor, party: str) -> None:
        """A whisper reaches the advisor only; the shopper hears the supervisor only in a barge-in."""
        if party not in ALLOWED[monitor.mode]:
            raise Conflict(
                f"In {monitor.mode} mode the supervisor may not speak to the {party}",
                code="not_allowed_in_mode",
            )

    async def send(self, event: str, data: dict[str, Any], room: rooms.Room, namespace: str) -> None:
        """Out through the event sink, at once: monitoring is no stored state, so there is no
        commit to wait for (``calls/outgoing.py`` has each event's schema)."""
        await self.app[DB].sink()(Outgoing(event, data, room, namespace))

    def party_room(self, consultation_id: uuid.UUID, party: str) -> tuple[rooms.Room, str]:
        shopper_id, advisor_id = self.parties[consultation_id]
        if party == "shopper":
            return rooms.shopper_of(shopper_id, consultation_id), rooms.SHOPPER_NS
        return rooms.staff(advisor_id), rooms.STAFF_NS

    # ---------------------------------------------------------------- ending

    async def stop(self, monitor_id: uuid.UUID, *, reason: str = "stopped") -> None:
        """End one monitor; the legs close with the call's last monitor. The parties and the
        supervisor's tabs hear of it."""
        monitor = self.monitors.pop(monitor_id, None)
        if monitor is None:
            return
        for track in monitor.tracks:
            track.stop()
        with contextlib.suppress(Exception):
            await monitor.pc.close()
        c_id = monitor.consultation_id
        await self.hang_up(monitor, set(monitor.talking_to))
        if not self.of_call(c_id):
            # The legs go unless the call is being recorded through them.
            await self.legs.release(c_id, "monitoring")
        await self.announce(c_id)
        if not self.of_call(c_id):
            self.parties.pop(c_id, None)
            if not self.legs.legs_of(c_id):
                # No leg ever came (or all went): the claim goes too (closing legs does it too).
                await self.app[PLACEMENT].release(c_id)
        await self.send(
            MONITOR_ENDED,
            {"monitor_id": str(monitor.id), "consultation_id": str(c_id), "reason": reason},
            monitor.sid,  # the socket's own room
            rooms.STAFF_NS,
        )
        log.info("monitoring stopped", consultation_id=str(c_id), reason=reason)

    async def announce(self, consultation_id: uuid.UUID) -> None:
        """Tell both parties the call's monitoring state (legs, notice, barge-in)."""
        if consultation_id not in self.parties:
            return
        state = self.state(consultation_id)
        for party in PARTICIPANTS:
            room, namespace = self.party_room(consultation_id, party)
            await self.send(MONITOR_STATE, state, room, namespace)

    async def stop_for_sid(self, sid: str) -> None:
        for monitor in [m for m in self.monitors.values() if m.sid == sid]:
            await self.stop(monitor.id, reason="disconnected")

    async def stop_call(self, consultation_id: uuid.UUID, reason: str) -> None:
        for monitor in self.of_call(consultation_id):
            await self.stop(monitor.id, reason=reason)
        await self.legs.release(consultation_id, "monitoring")

    async def check_calls(self) -> None:
        """End monitoring of calls that ended (hang-up, consultation closed); every
        ``WATCH_SECONDS``."""
        if self.remote:
            await self.forget_dead_holders()
        for consultation_id in {m.consultation_id for m in self.monitors.values()}:
            async with self.app[DB].read() as session:
                c = await session.get(Consultation, consultation_id)
            if c is None or c.status != ConsultationStatus.ACTIVE:
                await self.stop_call(consultation_id, reason="call_ended")

    async def close_all(self) -> None:
        for monitor_id in list(self.monitors):
            await self.stop(monitor_id, reason="shutdown")

    async def tell_moved(self, consultation_id: uuid.UUID, holder: str) -> None:
        """This process took the call over from one that died: both parties' pages offer their
        legs again (now answered here) if they still need them."""
        async with self.app[DB].read() as session:
            c = await session.get(Consultation, consultation_id)
        if c is None or c.advisor_id is None:
            return
        message = {"consultation_id": str(consultation_id), "placement": holder}
        await self.send(LEG_MOVED, message, rooms.shopper_of(c.shopper_id, c.id), rooms.SHOPPER_NS)
        await self.send(LEG_MOVED, message, rooms.staff(c.advisor_id), rooms.STAFF_NS)

    async def forget_dead_holders(self) -> None:
        """Monitors started here on a process that died end for their supervisor with
        ``moved``: the page listens again, now to the call's new holder."""
        placement = self.app[PLACEMENT]
        for monitor_id, ref in list(self.remote.items()):
            if await placement.alive(ref.holder):
                continue
            self.remote.pop(monitor_id, None)
            await self.send(
                MONITOR_ENDED,
                {
                    "monitor_id": str(monitor_id),
                    "consultation_id": str(ref.consultation_id),
                    "reason": "moved",
                },
                ref.sid,
                rooms.STAFF_NS,
            )


MONITORING = web.AppKey("monitoring", MonitoringHub)
