"""Live call monitoring on the real app: a supervisor's aiortc peer connection receives both
parties' packets forwarded from their monitoring legs (fed by real aiortc senders sending
VP8/Opus packets without encoding), picture-loss requests travel back to the party, several
supervisors listen at once, whisper and barge-in signalling is relayed only where allowed,
and every denial answers with a clear error ack."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp import web
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from sqlalchemy import select

from livedesk.calls.legs import LEGS
from livedesk.calls.media_sample import PacketTrack, SamplePackets, load_sample, make_sample
from livedesk.calls.monitoring import MONITORING
from livedesk.kit.db import Database
from livedesk.models import Role, TimelineEvent, TimelineKind
from livedesk.settings import Settings
from tests.conftest import SocketClient, wait_until


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SamplePackets:
    path = tmp_path_factory.mktemp("media") / "sample.webm"
    return load_sample(make_sample(path, seconds=2.0, width=320, height=240, bitrate=300_000))


@pytest.fixture
def notify() -> bool:
    return True


@pytest.fixture
def settings(settings: Settings, notify: bool) -> Settings:
    return settings.model_copy(
        update={
            "presence_grace_seconds": 0.0,
            "recording_retention_check_seconds": 0,
            "webhook_poll_seconds": 0,
            "monitoring_notify": notify,
        }
    )


async def _call(live: Any, make_staff: Any, kind: str = "video") -> tuple[SocketClient, SocketClient, str]:
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    shopper = await live.shopper()
    consultation = await shopper.ok("queue.join", {"kind": kind})
    await console.wait_for("offer.new")
    await console.ok("offer.accept", {"consultation_id": consultation["id"]})
    return console, shopper, consultation["id"]


class Listener:
    """What the supervisor's browser does: a receive-only connection, audio and video for
    each party, counting the packets that arrive."""

    def __init__(self) -> None:
        # As a browser does by default: everything over one transport.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        for kind in ("audio", "video", "audio", "video"):
            self.pc.addTransceiver(kind, direction="recvonly")
        self.monitor: dict[str, Any] = {}

    async def start(self, sock: SocketClient, consultation_id: str) -> dict[str, Any]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.monitor = await sock.ok(
            "monitor.start",
            {"consultation_id": consultation_id, "type": "offer", "sdp": self.pc.localDescription.sdp},
        )
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=self.monitor["sdp"], type="answer"))
        return self.monitor

    def receiver(self, participant: str, kind: str) -> Any:
        mid = next(
            t["mid"] for t in self.monitor["tracks"] if t["participant"] == participant and t["kind"] == kind
        )
        return next(t.receiver for t in self.pc.getTransceivers() if t.mid == mid)

    async def packets(self, participant: str, kind: str) -> int:
        stats = await self.receiver(participant, kind).getStats()
        return sum(s.packetsReceived for s in stats.values() if s.type == "inbound-rtp")

    async def close(self) -> None:
        await self.pc.close()


async def _send_leg(sock: SocketClient, consultation_id: str, sample: SamplePackets) -> RTCPeerConnection:
    """What a party's browser does when told to: a send-only monitoring leg."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for kind in ("video", "audio"):
        pc.addTransceiver(PacketTrack(sample, kind), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await sock.ok(
        "monitor.leg_offer",
        {"consultation_id": consultation_id, "type": "offer", "sdp": pc.localDescription.sdp},
    )
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    return pc


def _count_keyframe_requests(pc: RTCPeerConnection) -> list[int]:
    """Counts the PLIs a party's video sender gets (aiortc calls ``_send_keyframe`` for each)."""
    count = [0]
    sender: RTCRtpSender = next(t.sender for t in pc.getTransceivers() if t.kind == "video")
    original = sender._send_keyframe

    def counted() -> None:
        count[0] += 1
        original()

    sender._send_keyframe = counted  # type: ignore[method-assign]
    return count


async def test_supervisors_receive_both_parties_packets_and_picture_loss_goes_back(
    live: Any, make_staff: Any, app: web.Application, db: Database, sample: SamplePackets
) -> None:
    console, shopper, cid = await _call(live, make_staff)
    supervisor = await make_staff(Role.SUPERVISOR)
    admin = await make_staff(Role.ADMIN)
    board = await live.staff(supervisor)
    board2 = await live.staff(admin)

    first = Listener()
    started = await first.start(board, cid)
    assert started["mode"] == "listen"
    assert sorted((t["participant"], t["kind"]) for t in started["tracks"]) == [
        ("advisor", "audio"),
        ("advisor", "video"),
        ("shopper", "audio"),
        ("shopper", "video"),
    ]
    # Both parties are told to open their legs and (notify policy) that a supervisor listens.
    for party in (shopper, console):
        state = await party.wait_for("monitor.state", lambda s: s["consultation_id"] == cid and s["legs"])
        assert state["listening"] is True
        assert state["barge"] is False
    assert (await shopper.ok("monitor.current", {"consultation_id": cid}))["listening"] is True

    shopper_leg = await _send_leg(shopper, cid, sample)
    advisor_leg = await _send_leg(console, cid, sample)
    plis = _count_keyframe_requests(shopper_leg)

    async def flowing(listener: Listener) -> bool:
        counts = [await listener.packets(p, k) for p in ("shopper", "advisor") for k in ("audio", "video")]
        return all(c > 20 for c in counts)

    await wait_until(lambda: flowing(first), within=20)
    # The forwarded video is byte for byte the party's VP8 (decoded on the supervisor's side).
    frame = await first.receiver("shopper", "video").track.recv()
    assert (frame.width, frame.height) == (320, 240)

    # A second supervisor (an admin) on the same call: same legs, more subscribers.
    second = Listener()
    await second.start(board2, cid)
    await wait_until(lambda: flowing(second), within=20)
    assert len(app[LEGS].legs_of(uuid.UUID(cid))) == 2

    # The supervisor's browser reports picture loss: the party's sender is asked for a key frame.
    # (First the start-up requests end: every video track has passed a key frame on.)
    async def settled() -> bool:
        tracks = [t for m in app[MONITORING].monitors.values() for t in m.tracks if t.kind == "video"]
        return all(t.keyframes and (t._keyframe_task is None or t._keyframe_task.done()) for t in tracks)

    await wait_until(settled, within=10)
    before = plis[0]
    receiver = second.receiver("shopper", "video")
    ssrc = receiver.getSynchronizationSources()[0].source
    await receiver._send_rtcp_pli(ssrc)

    async def forwarded() -> bool:
        return plis[0] > before

    await wait_until(forwarded, within=5)

    # The shopper reloads: a new leg replaces theirs, and both supervisors follow it.
    before_reload = [await listener.packets("shopper", "video") for listener in (first, second)]
    await shopper_leg.close()
    shopper_leg = await _send_leg(shopper, cid, sample)

    async def following() -> bool:
        now = [await listener.packets("shopper", "video") for listener in (first, second)]
        return all(n > b + 20 for n, b in zip(now, before_reload, strict=True))

    await wait_until(following, within=20)

    # The first stops: the legs stay for the second; the second stops: the legs close.
    assert await board.ok("monitor.stop", {"monitor_id": started["monitor_id"]}) == {"stopped": True}
    assert len(app[LEGS].legs_of(uuid.UUID(cid))) == 2
    await board2.ok("monitor.stop", {"monitor_id": second.monitor["monitor_id"]})
    for party in (shopper, console):
        state = await party.wait_for("monitor.state", lambda s: not s["legs"])
        assert state["listening"] is False
    assert app[LEGS].legs_of(uuid.UUID(cid)) == []
    assert app[MONITORING].monitors == {}
    for pc in (shopper_leg, advisor_leg):
        await pc.close()
    await first.close()
    await second.close()

    # The shopper's timeline says a supervisor listened (twice), by whom, told or not.
    async with db.read() as session:
        rows = list(
            await session.scalars(
                select(TimelineEvent).where(
                    TimelineEvent.consultation_id == uuid.UUID(cid), TimelineEvent.kind == TimelineKind.CALL
                )
            )
        )
    listened = [r for r in rows if r.data.get("action") == "monitoring.listen"]
    assert {r.actor_staff_id for r in listened} == {supervisor.id, admin.id}
    assert all(r.data["notified"] is True for r in listened)


async def test_only_supervisors_and_admins_monitor_whisper_or_barge(
    live: Any, make_staff: Any, sample: SamplePackets
) -> None:
    console, shopper, cid = await _call(live, make_staff)
    bystander_advisor = await live.staff(await make_staff(Role.ADVISOR))
    other_shopper = await live.shopper()
    offer = {"consultation_id": cid, "type": "offer", "sdp": "v=0"}

    # The call's own advisor, another advisor, and shoppers cannot monitor.
    for sock in (console, bystander_advisor):
        ack = await sock.call("monitor.start", offer)
        assert ack["error"]["code"] == "forbidden", ack
        for event, payload in (
            ("monitor.mode", {"monitor_id": str(uuid.uuid4()), "mode": "barge"}),
            ("monitor.talk", {"monitor_id": str(uuid.uuid4()), "to": "shopper", "type": "offer", "sdp": "x"}),
            ("monitor.stop", {"monitor_id": str(uuid.uuid4())}),
        ):
            ack = await sock.call(event, payload)
            assert ack["error"]["code"] == "forbidden", (event, ack)
    for sock in (shopper, other_shopper):
        ack = await sock.call("monitor.start", offer)
        assert ack["error"]["code"] == "unknown_event", ack

    # Nobody monitors yet: a party's leg is refused; strangers may not even ask.
    ack = await shopper.call("monitor.leg_offer", offer)
    assert ack["error"]["code"] == "not_monitored"
    ack = await other_shopper.call("monitor.current", {"consultation_id": cid})
    assert ack["ok"] is False
    ack = await bystander_advisor.call("monitor.current", {"consultation_id": cid})
    assert ack["ok"] is False

    supervisor = await live.staff(await make_staff(Role.SUPERVISOR))
    other_supervisor = await live.staff(await make_staff(Role.SUPERVISOR))
    # Bad input: a malformed offer, an unknown call.
    ack = await supervisor.call("monitor.start", offer)
    assert ack["error"]["code"] == "bad_offer", ack
    ack = await supervisor.call("monitor.start", {**offer, "consultation_id": str(uuid.uuid4())})
    assert ack["error"]["code"] == "consultation_not_found"
    ack = await supervisor.call("monitor.start", {**offer, "sdp": ""})
    assert ack["error"]["code"] == "validation_failed"

    listener = Listener()
    monitor = await listener.start(supervisor, cid)
    mid = monitor["monitor_id"]
    # A supervisor is not a party: no legs from them.
    ack = await supervisor.call("monitor.leg_offer", offer)
    assert ack["error"]["code"] == "not_a_party"
    # Another supervisor cannot drive this monitor.
    ack = await other_supervisor.call("monitor.mode", {"monitor_id": mid, "mode": "barge"})
    assert ack["error"]["code"] == "not_monitoring"

    # Listening: nobody hears the supervisor.
    talk = {"monitor_id": mid, "to": "advisor", "type": "offer", "sdp": "v=0 whisper"}
    ack = await supervisor.call("monitor.talk", talk)
    assert ack["error"]["code"] == "not_allowed_in_mode"

    # Whisper: the advisor only.
    assert (await supervisor.ok("monitor.mode", {"monitor_id": mid, "mode": "whisper"}))["mode"] == "whisper"
    ack = await supervisor.call("monitor.talk", {**talk, "to": "shopper"})
    assert ack["error"]["code"] == "not_allowed_in_mode"
    await supervisor.ok("monitor.talk", talk)
    voice = await console.wait_for("monitor.voice", lambda v: v["type"] == "offer")
    assert voice == {"consultation_id": cid, "talk_id": mid, "type": "offer", "sdp": "v=0 whisper"}
    # The shopper was offered nothing, so cannot answer; the advisor can.
    answer = {"consultation_id": cid, "talk_id": mid, "type": "answer", "sdp": "v=0 answer"}
    ack = await shopper.call("monitor.talk_answer", answer)
    assert ack["error"]["code"] == "no_talk"
    ack = await other_shopper.call("monitor.talk_answer", answer)
    assert ack["ok"] is False
    await console.ok("monitor.talk_answer", answer)
    got = await supervisor.wait_for("monitor.talk_answer")
    assert got == {"monitor_id": mid, "from": "advisor", "type": "answer", "sdp": "v=0 answer"}
    assert other_supervisor.received("monitor.talk_answer") == []
    assert shopper.received("monitor.voice") == []

    # Barge-in: both parties are told (whatever the notify policy) and the shopper may be offered.
    await supervisor.ok("monitor.mode", {"monitor_id": mid, "mode": "barge"})
    for party in (shopper, console):
        await party.wait_for("monitor.state", lambda s: s["barge"] is True and s["listening"] is True)
    await supervisor.ok("monitor.talk", {**talk, "to": "shopper"})
    await shopper.wait_for("monitor.voice", lambda v: v["type"] == "offer")

    # Back to listening: both talks are hung up by the server.
    await supervisor.ok("monitor.mode", {"monitor_id": mid, "mode": "listen"})
    for party in (shopper, console):
        await party.wait_for("monitor.voice", lambda v: v["type"] == "hangup" and v["talk_id"] == mid)
        await party.wait_for("monitor.state", lambda s: s["barge"] is False and s["legs"] is True)
    await listener.close()


@pytest.mark.parametrize("notify", [False])
async def test_without_notice_the_parties_open_legs_but_are_not_told_of_listening(
    live: Any, make_staff: Any, app: web.Application, db: Database
) -> None:
    console, shopper, cid = await _call(live, make_staff)
    supervisor = await live.staff(await make_staff(Role.SUPERVISOR))
    listener = Listener()
    monitor = await listener.start(supervisor, cid)
    for party in (shopper, console):
        state = await party.wait_for("monitor.state", lambda s: s["legs"])
        assert state["listening"] is False
        assert state["barge"] is False
    async with db.read() as session:
        row = await session.scalar(
            select(TimelineEvent)
            .where(TimelineEvent.consultation_id == uuid.UUID(cid))
            .where(TimelineEvent.kind == TimelineKind.CALL)
        )
    assert row is not None
    assert row.data == {"action": "monitoring.listen", "notified": False}

    # The call ends: the supervisor hears so, the monitor and the legs go.
    await console.ok("consultation.end", {"consultation_id": cid})
    ended = await supervisor.wait_for("monitor.ended", within=10)
    assert ended == {"monitor_id": monitor["monitor_id"], "consultation_id": cid, "reason": "call_ended"}
    assert app[MONITORING].monitors == {}
    ack = await supervisor.call("monitor.start", {"consultation_id": cid, "type": "offer", "sdp": "v=0"})
    assert ack["error"]["code"] == "not_in_call"
    await listener.close()


async def test_a_supervisor_who_disconnects_stops_monitoring(
    live: Any, make_staff: Any, app: web.Application
) -> None:
    console, shopper, cid = await _call(live, make_staff)
    supervisor = await live.staff(await make_staff(Role.SUPERVISOR))
    listener = Listener()
    await listener.start(supervisor, cid)
    await console.wait_for("monitor.state", lambda s: s["legs"])
    await supervisor.close()
    await console.wait_for("monitor.state", lambda s: not s["legs"])
    await shopper.wait_for("monitor.state", lambda s: not s["legs"])

    async def gone() -> bool:
        return not app[MONITORING].monitors

    await wait_until(gone, within=5)
    await listener.close()
