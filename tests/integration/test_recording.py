"""Recording a call end to end on the real app: consent over real sockets, the server leg fed
by real aiortc peer connections sending VP8/Opus packets (no encoding on either side), the
joined file decoded with PyAV, playback with Range, and every denial."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from sqlalchemy import func, select

from livedesk.app import create_app
from livedesk.calls.media_sample import PacketTrack, SamplePackets, load_sample, make_sample
from livedesk.kit.context import DB
from livedesk.kit.db import Database
from livedesk.models import (
    Recording,
    RecordingConsent,
    RecordingStatus,
    Role,
    TimelineEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from livedesk.recording.recorder import RECORDER
from livedesk.settings import Settings
from tests.conftest import SocketClient, login, wait_until


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SamplePackets:
    path = tmp_path_factory.mktemp("media") / "sample.webm"
    return load_sample(make_sample(path, seconds=2.0, width=320, height=240, bitrate=400_000))


@pytest.fixture
def policy() -> str:
    return "ask"


@pytest.fixture
def settings(settings: Settings, policy: str) -> Settings:
    return settings.model_copy(
        update={
            "presence_grace_seconds": 0.0,
            "recording_retention_check_seconds": 0,
            "recording_consent_policy": policy,
            # Webhooks are only queued here, never posted.
            "webhook_poll_seconds": 0,
        }
    )


async def _call(
    live: Any, make_staff: Any, kind: str = "video"
) -> tuple[SocketClient, SocketClient, str, Any]:
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    shopper = await live.shopper()
    consultation = await shopper.ok("queue.join", {"kind": kind})
    await console.wait_for("offer.new")
    await console.ok("offer.accept", {"consultation_id": consultation["id"]})
    return console, shopper, consultation["id"], advisor


async def _send_leg(
    sock: SocketClient, recording_id: str, sample: SamplePackets, kinds: tuple[str, ...] = ("video", "audio")
) -> RTCPeerConnection:
    """What a browser does: a send-only peer connection to the server leg."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for kind in kinds:
        pc.addTransceiver(PacketTrack(sample, kind), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await sock.ok(
        "leg.offer", {"recording_id": recording_id, "type": "offer", "sdp": pc.localDescription.sdp}
    )
    assert answer["type"] == "answer"
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    return pc


async def _recording(db: Database, recording_id: str) -> Recording | None:
    async with db.read() as session:
        return await session.get(Recording, uuid.UUID(recording_id))


async def _frames_in(app: web.Application, recording_id: str, at_least: int) -> bool:
    writers = [w for w in app[RECORDER].writers.values() if str(w.recording_id) == recording_id]
    return len(writers) == 2 and all(w.writer.stats.video_frames >= at_least for w in writers)


async def test_a_consented_recording_becomes_one_file_with_both_participants(
    live: Any,
    make_staff: Any,
    app: web.Application,
    db: Database,
    sample: SamplePackets,
    client: TestClient[Any, Any],
) -> None:
    console, shopper, consultation_id, advisor = await _call(live, make_staff)
    bystander = await live.shopper()

    started = await console.ok("recording.start", {"consultation_id": consultation_id})
    assert started["status"] == "awaiting_consent"
    assert started["policy"] == "ask"
    asked = await shopper.wait_for("recording.updated", lambda r: r["status"] == "awaiting_consent")
    assert asked["id"] == started["id"]
    # Nothing is recorded before the shopper says yes.
    early = await shopper.call(
        "leg.offer", {"recording_id": started["id"], "type": "offer", "sdp": "v=0 nothing yet"}
    )
    assert early["error"]["code"] == "not_recording"

    accepted = await shopper.ok("recording.consent", {"recording_id": started["id"], "accept": True})
    assert accepted["status"] == "recording"
    await console.wait_for("recording.updated", lambda r: r["status"] == "recording")
    assert [c["participant"] for c in accepted["consents"]] == ["advisor", "shopper"]
    assert all(c["decision"] == "accepted" and c["decided_at"] for c in accepted["consents"])

    legs = [await _send_leg(shopper, started["id"], sample), await _send_leg(console, started["id"], sample)]
    # About two seconds of media from each participant (the legs count frames as they come).
    await wait_until(lambda: _frames_in(app, started["id"], 50), within=20)
    stopped = await console.ok("recording.stop", {"recording_id": started["id"]})
    assert stopped["status"] == "processing"
    ready = await shopper.wait_for("recording.updated", lambda r: r["status"] == "ready", within=30)
    for pc in legs:
        await pc.close()
    assert ready["duration_ms"] >= 1500
    assert ready["size_bytes"] > 10_000
    assert ready["media_url"] == f"/api/v1/recordings/{ready['id']}/media"
    assert not bystander.received("recording.updated")

    await login(client, advisor)
    response = await client.get(ready["media_url"])
    assert response.status == 200
    assert response.headers["Content-Type"] == "video/webm"
    body = await response.read()
    assert len(body) == ready["size_bytes"]
    with av.open(io.BytesIO(body)) as container:
        titles = [s.metadata.get("title") for s in container.streams]
        assert titles == ["shopper video", "shopper audio", "advisor video", "advisor audio"]
        counts = {s.index: 0 for s in container.streams}
        for packet in container.demux():
            if packet.size:
                for frame in packet.decode():
                    counts[packet.stream.index] += 1
                    assert frame is not None
        assert all(n > 20 for n in counts.values()), counts
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (320, 240)

    async with db.read() as session:
        events = list(
            await session.scalars(
                select(TimelineEvent)
                .where(TimelineEvent.ref_id == ready["id"])
                .order_by(TimelineEvent.recorded_at)
            )
        )
    assert [e.data["status"] for e in events][-1] == "ready"
    assert events[-1].data["duration_ms"] == ready["duration_ms"]
    assert events[-1].data["size_bytes"] == ready["size_bytes"]
    assert any("consented" in e.summary for e in events)


@pytest.mark.parametrize("policy", ["announce"])
async def test_announce_policy_records_at_once_and_a_refusal_keeps_nothing(
    live: Any, make_staff: Any, app: web.Application, db: Database, sample: SamplePackets, settings: Settings
) -> None:
    console, shopper, consultation_id, _advisor = await _call(live, make_staff)
    started = await console.ok("recording.start", {"consultation_id": consultation_id})
    assert started["status"] == "recording"
    told = await shopper.wait_for("recording.updated", lambda r: r["status"] == "recording")
    assert {c["participant"]: c["decision"] for c in told["consents"]} == {
        "advisor": "accepted",
        "shopper": "announced",
    }
    legs = [await _send_leg(shopper, started["id"], sample), await _send_leg(console, started["id"], sample)]
    await wait_until(lambda: _frames_in(app, started["id"], 10), within=20)

    refused = await shopper.ok("recording.consent", {"recording_id": started["id"], "accept": False})
    assert refused["status"] == "refused"
    await console.wait_for("recording.updated", lambda r: r["status"] == "refused")
    await wait_until(lambda: _no_legs(app, started["id"]), within=10)
    for pc in legs:
        await pc.close()
    # Nothing was kept: no part, no file, no spool left; the refusal is stored with its time.
    async with db.read() as session:
        consents = list(
            await session.scalars(
                select(RecordingConsent).where(RecordingConsent.recording_id == uuid.UUID(started["id"]))
            )
        )
    assert sorted(c.decision.value for c in consents) == ["accepted", "announced", "refused"]
    refusal = next(c for c in consents if c.decision.value == "refused")
    assert refusal.participant == "shopper"
    assert refusal.decided_at is not None
    recording = await _recording(db, started["id"])
    assert recording is not None
    assert recording.status == RecordingStatus.REFUSED
    assert recording.storage_key is None
    assert not _files(settings.data_dir, started["id"])
    # It cannot be restarted by answering again, nor fed.
    again = await shopper.call("recording.consent", {"recording_id": started["id"], "accept": True})
    assert again["error"]["code"] == "not_open"
    late = await shopper.call(
        "leg.offer", {"recording_id": started["id"], "type": "offer", "sdp": "v=0 too late"}
    )
    assert late["error"]["code"] == "not_recording"


async def _no_legs(app: web.Application, recording_id: str) -> bool:
    return not any(str(w.recording_id) == recording_id for w in app[RECORDER].writers.values())


def _files(data_dir: Path, recording_id: str) -> list[Path]:
    return [p for p in data_dir.rglob("*") if recording_id in str(p) and p.is_file()]


async def test_refusing_before_anything_is_recorded_prevents_it(
    live: Any, make_staff: Any, db: Database
) -> None:
    console, shopper, consultation_id, _advisor = await _call(live, make_staff)
    started = await console.ok("recording.start", {"consultation_id": consultation_id})
    refused = await shopper.ok("recording.consent", {"recording_id": started["id"], "accept": False})
    assert refused["status"] == "refused"
    denied = await console.call(
        "leg.offer", {"recording_id": started["id"], "type": "offer", "sdp": "v=0 not recording"}
    )
    assert denied["error"]["code"] == "not_recording"
    # The advisor may ask again later; the refused one stays refused.
    second = await console.ok("recording.start", {"consultation_id": consultation_id})
    assert second["id"] != started["id"]
    withdrawn = await console.ok("recording.stop", {"recording_id": second["id"]})
    assert withdrawn["status"] == "failed"
    assert withdrawn["error"] == "withdrawn before consent"


async def test_only_the_parties_may_start_answer_feed_or_stop(live: Any, make_staff: Any) -> None:
    console, shopper, consultation_id, _advisor = await _call(live, make_staff)
    other_advisor = await live.staff(await make_staff(Role.ADVISOR))
    supervisor = await live.staff(await make_staff(Role.SUPERVISOR))
    stranger = await live.shopper()

    assert (await shopper.call("recording.start", {"consultation_id": consultation_id}))["error"]["code"] == (
        "unknown_event"
    )
    for sock in (other_advisor, supervisor):
        denied = await sock.call("recording.start", {"consultation_id": consultation_id})
        assert denied["error"]["code"] == "not_a_party"
    missing = await console.call("recording.start", {"consultation_id": str(uuid.uuid4())})
    assert missing["error"]["code"] == "consultation_not_found"
    bad = await console.call("recording.start", {"consultation_id": "nope"})
    assert bad["error"]["code"] == "validation_failed"

    started = await console.ok("recording.start", {"consultation_id": consultation_id})
    twice = await console.call("recording.start", {"consultation_id": consultation_id})
    assert twice["error"]["code"] == "already_recording"
    ref = {"recording_id": started["id"]}
    assert (await stranger.call("recording.consent", {**ref, "accept": True}))["error"][
        "code"
    ] == "not_a_party"
    assert (await console.call("recording.consent", {**ref, "accept": True}))["error"][
        "code"
    ] == "unknown_event"
    assert (await shopper.call("recording.stop", ref))["error"]["code"] == "unknown_event"
    assert (await other_advisor.call("recording.stop", ref))["error"]["code"] == "not_a_party"
    offer = {**ref, "type": "offer", "sdp": "v=0 stranger"}
    assert (await stranger.call("leg.offer", offer))["error"]["code"] == "not_a_party"
    assert (await other_advisor.call("leg.offer", offer))["error"]["code"] == "not_a_party"
    current = await stranger.call("recording.current", {"consultation_id": consultation_id})
    assert current["error"]["code"] == "not_a_party"
    assert (await shopper.ok("recording.current", {"consultation_id": consultation_id}))["id"] == started[
        "id"
    ]
    assert not stranger.received("recording.updated")
    assert not other_advisor.received("recording.updated")

    await shopper.ok("recording.consent", {**ref, "accept": True})
    garbage = await shopper.call("leg.offer", {**ref, "type": "offer", "sdp": "this is not sdp at all"})
    assert garbage["ok"] is False
    assert garbage["error"]["code"] == "bad_offer"


async def test_a_chat_cannot_be_recorded(live: Any, make_staff: Any) -> None:
    console, _shopper, consultation_id, _advisor = await _call(live, make_staff, kind="chat")
    denied = await console.call("recording.start", {"consultation_id": consultation_id})
    assert denied["error"]["code"] == "not_in_call"


async def test_hanging_up_stops_the_recording_and_keeps_what_was_recorded(
    live: Any, make_staff: Any, app: web.Application, sample: SamplePackets
) -> None:
    console, shopper, consultation_id, _advisor = await _call(live, make_staff)
    started = await console.ok("recording.start", {"consultation_id": consultation_id})
    await shopper.ok("recording.consent", {"recording_id": started["id"], "accept": True})
    legs = [await _send_leg(shopper, started["id"], sample), await _send_leg(console, started["id"], sample)]
    await wait_until(lambda: _frames_in(app, started["id"], 20), within=20)
    await console.ok("consultation.end", {"consultation_id": consultation_id})
    await app[RECORDER].check_calls(1)
    ready = await console.wait_for("recording.updated", lambda r: r["status"] == "ready", within=30)
    assert ready["duration_ms"] > 500
    for pc in legs:
        await pc.close()


async def _count(db: Database, model: Any, *where: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_no_event_during_a_stop_is_lost(live: Any, make_staff: Any) -> None:
    """Stopping twice answers the second time with a clear conflict."""
    console, shopper, consultation_id, _advisor = await _call(live, make_staff)
    started = await console.ok("recording.start", {"consultation_id": consultation_id})
    await shopper.ok("recording.consent", {"recording_id": started["id"], "accept": True})
    await console.ok("recording.stop", {"recording_id": started["id"]})
    again = await console.call("recording.stop", {"recording_id": started["id"]})
    assert again["error"]["code"] == "not_open"
    failed = await console.wait_for("recording.updated", lambda r: r["status"] == "failed", within=10)
    assert failed["error"] == "no media arrived"


async def test_a_voice_call_records_both_voices_and_announces_it_by_webhook(
    live: Any,
    make_staff: Any,
    app: web.Application,
    db: Database,
    sample: SamplePackets,
    client: TestClient[Any, Any],
) -> None:
    async with db.transaction() as session:
        session.add(
            WebhookEndpoint(
                id=uuid.uuid4(),
                url="http://127.0.0.1:9/hook",
                secret="s" * 32,
                event_types=["recording.ready"],
            )
        )
    console, shopper, consultation_id, advisor = await _call(live, make_staff, kind="voice")
    started = await console.ok("recording.start", {"consultation_id": consultation_id})
    assert started["with_video"] is False
    await shopper.ok("recording.consent", {"recording_id": started["id"], "accept": True})
    legs = [
        await _send_leg(shopper, started["id"], sample, kinds=("audio",)),
        await _send_leg(console, started["id"], sample, kinds=("audio",)),
    ]

    async def audio_in() -> bool:
        writers = [w for w in app[RECORDER].writers.values() if str(w.recording_id) == started["id"]]
        return len(writers) == 2 and all(w.writer.stats.audio_frames >= 50 for w in writers)

    await wait_until(audio_in, within=20)
    await console.ok("recording.stop", {"recording_id": started["id"]})
    ready = await console.wait_for("recording.updated", lambda r: r["status"] == "ready", within=30)
    for pc in legs:
        await pc.close()
    await login(client, advisor)
    body = await (await client.get(ready["media_url"])).read()
    with av.open(io.BytesIO(body)) as container:
        assert [s.metadata.get("title") for s in container.streams] == ["shopper audio", "advisor audio"]
        assert sum(1 for _ in container.decode(audio=1)) >= 50
    async with db.read() as session:
        deliveries = list(
            await session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.event_type == "recording.ready")
            )
        )
    assert len(deliveries) == 1
    assert deliveries[0].payload["data"]["recording_id"] == ready["id"]
    assert deliveries[0].payload["data"]["duration_ms"] == ready["duration_ms"]


async def test_legs_in_two_processes_are_joined_once_into_one_file(
    live: Any, make_staff: Any, app: web.Application, settings: Settings, sample: SamplePackets
) -> None:
    """The shopper's leg in this process, the advisor's in another (same database and
    storage): the stop here, the other process notices, and exactly one of them joins both."""
    # The call is set up first: the other process's routing would otherwise offer it to the
    # advisor through its own Socket.IO server, which has no Redis to reach this one.
    console, shopper, consultation_id, _advisor = await _call(live, make_staff)
    other = create_app(settings)
    async with TestClient(TestServer(other)):
        started = await console.ok("recording.start", {"consultation_id": consultation_id})
        await shopper.ok("recording.consent", {"recording_id": started["id"], "accept": True})
        legs = [await _send_leg(shopper, started["id"], sample)]
        advisor_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        for kind in ("video", "audio"):
            advisor_pc.addTransceiver(PacketTrack(sample, kind), direction="sendonly")
        await advisor_pc.setLocalDescription(await advisor_pc.createOffer())
        recording = await _recording(other[DB], started["id"])
        assert recording is not None
        answer = await other[RECORDER].open_leg(
            recording, "advisor", advisor_pc.localDescription.sdp, user="advisor"
        )
        await advisor_pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        legs.append(advisor_pc)

        async def both() -> bool:
            here = [w for w in app[RECORDER].writers.values() if str(w.recording_id) == started["id"]]
            there = [w for w in other[RECORDER].writers.values() if str(w.recording_id) == started["id"]]
            return bool(here and there) and all(w.writer.stats.video_frames >= 30 for w in here + there)

        await wait_until(both, within=20)
        await console.ok("recording.stop", {"recording_id": started["id"]})
        # The other process finds its leg's recording stopped (its watcher does this every few
        # seconds; called here to keep the test short).
        await other[RECORDER].check_calls(1)
        ready = await console.wait_for("recording.updated", lambda r: r["status"] == "ready", within=30)
        for pc in legs:
            await pc.close()
    assert len(console.received("recording.updated")) == len(
        [r for r in console.received("recording.updated") if r["id"] == started["id"]]
    )
    assert [r["status"] for r in console.received("recording.updated")].count("ready") == 1
    path = next((settings.data_dir / "recordings").rglob("recording-*.webm"))
    with av.open(str(path)) as container:
        titles = [s.metadata.get("title") for s in container.streams]
    assert titles == ["shopper video", "shopper audio", "advisor video", "advisor audio"]
    assert ready["size_bytes"] == path.stat().st_size
    # The parts went once joined; the spool is empty.
    assert [p for p in (settings.data_dir / "recordings").rglob("*") if p.is_file()] == [path]
    assert not [p for p in (settings.data_dir / "recording-spool").rglob("*") if p.is_file()]
