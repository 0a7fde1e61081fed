"""Media legs across processes (issue 20 item 3), with two real ``livedesk serve`` processes on
one database, the machine's Redis and one shared data directory (the shared volume of the
production shape), and real aiortc peers as the browsers.

- Monitoring: the shopper on A, the advisor on B, a supervisor on each. Every leg and monitor
  of the call lives on one process (the first to need it); offers reaching the other process
  are routed to it. Both supervisors receive both parties' audio and video. A recording started
  meanwhile records the same legs: each party uploads once.
- Monitoring with ``kill -9`` of the call's process: the supervisor on the other process is told
  (``monitor.ended {reason: "moved"}``), listens again there, the parties offer again, and she
  hears and sees both once more.
- Recording with ``kill -9``: the call's legs' process dies mid-recording. The other process
  takes the call over and tells the parties (``leg.moved``; a page that reconnects asks
  ``leg.placement``), they offer again, and when the recording stops the dead process's parts
  are salvaged from the shared spool (not deleted) and the hole is recorded: the recording is
  ready but ``incomplete``, with the gap of each party, and the file decodes with both.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from redis import asyncio as aioredis

from livedesk.calls.media_sample import PacketTrack, SamplePackets, load_sample, make_sample
from livedesk.models import Role
from tests.conftest import SocketClient, StaffAccount, wait_until
from tests.integration.test_monitoring import Listener
from tests.integration.test_multiprocess import (
    REDIS_URL,
    Cluster,
    Server,
    _free_port,
    shopper_socket,
    staff_socket,
    wait_ready,
)

# How long the parties are without a leg after the kill (see the test).
OUTAGE_SECONDS = 2.0


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SamplePackets:
    path = tmp_path_factory.mktemp("media") / "sample.webm"
    return load_sample(make_sample(path, seconds=2.0, width=320, height=240, bitrate=300_000))


class SharedCluster(Cluster):
    """Processes sharing one data directory: recordings and the recording spool, as the
    compose file's shared volume."""

    def start(self, name: str) -> Server:
        port = _free_port()
        env = {**self.env, "LIVEDESK_PORT": str(port), "LIVEDESK_DATA_DIR": str(self.tmp / "data")}
        log = self.tmp / f"server-{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "livedesk", "serve"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server(name, proc, f"http://127.0.0.1:{port}", log)
        self.servers.append(server)
        return server


@pytest.fixture
async def redis_up() -> None:
    """The multi-process path needs the machine's Redis: say so plainly when it is not there."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc}")
    finally:
        await client.aclose()


@pytest.fixture
def cluster(database_url: str, tmp_path: Path) -> Iterator[SharedCluster]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update(
        {
            "LIVEDESK_HOST": "127.0.0.1",
            "LIVEDESK_DATABASE_URL": database_url,
            "LIVEDESK_REDIS_URL": REDIS_URL,
            "LIVEDESK_REDIS_CHANNEL": f"livedesk-test-{uuid.uuid4().hex}",
            "LIVEDESK_SECRET_KEY": "media-test-secret-" + uuid.uuid4().hex,
            "LIVEDESK_PRESENCE_GRACE_SECONDS": "0",
            "LIVEDESK_LOG_LEVEL": "warning",
            "LIVEDESK_RECORDING_RETENTION_CHECK_SECONDS": "0",
        }
    )
    group = SharedCluster(tmp_path, env)
    try:
        yield group
    finally:
        group.stop_all()


async def _visitor(server: Server) -> str:
    async with aiohttp.ClientSession() as http:
        response = await http.post(server.url + "/api/v1/visitors", json={})
        assert response.status == 201, await response.text()
        token: str = (await response.json())["token"]
        return token


async def _call(
    a: Server, b: Server, advisor: StaffAccount, sockets: list[SocketClient]
) -> tuple[SocketClient, SocketClient, str, str]:
    """The shopper on A, the advisor on B, in a video call."""
    console = await staff_socket(b, advisor)
    sockets.append(console)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available", within=10)
    token = await _visitor(a)
    shopper = await shopper_socket(a, token)
    sockets.append(shopper)
    consultation = await shopper.ok("queue.join", {"kind": "video"})
    cid = consultation["id"]
    await console.wait_for("offer.new", lambda o: o["id"] == cid, within=10)
    await console.ok("offer.accept", {"consultation_id": cid})
    return console, shopper, cid, token


async def _leg(
    sock: SocketClient, event: str, ref: dict[str, str], sample: SamplePackets
) -> tuple[RTCPeerConnection, dict[str, Any]]:
    """What a party's browser does: one send-only connection to the call's server leg."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for kind in ("video", "audio"):
        pc.addTransceiver(PacketTrack(sample, kind), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await sock.ok(event, {**ref, "type": "offer", "sdp": pc.localDescription.sdp})
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    return pc, answer


def _spooled(data: Path, recording_id: str, process: str) -> dict[str, int]:
    """Bytes written so far per participant by ``process`` (the shared spool)."""
    sizes: dict[str, int] = {}
    for path in (data / "recording-spool" / recording_id / process).glob("*.webm"):
        participant = path.name.split("-", 1)[0]
        sizes[participant] = sizes.get(participant, 0) + path.stat().st_size
    return sizes


async def _close_all(sockets: list[SocketClient], pcs: list[RTCPeerConnection]) -> None:
    for pc in pcs:
        with contextlib.suppress(Exception):
            await pc.close()
    for sock in sockets:
        with contextlib.suppress(Exception):
            if sock.sio.connected:
                await sock.close()
            else:  # dropped with its process: engine.io leaves its HTTP session open then
                if sock.sio.eio.read_loop_task is not None:
                    await asyncio.wait_for(sock.sio.eio.read_loop_task, 5)
                if sock.sio.eio.http is not None:
                    await sock.sio.eio.http.close()


async def test_supervisors_on_either_process_see_and_hear_both_parties_through_one_leg_each(
    cluster: SharedCluster, redis_up: None, make_staff: Any, sample: SamplePackets
) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    await asyncio.gather(wait_ready(a), wait_ready(b))
    advisor = await make_staff(Role.ADVISOR)
    sockets: list[SocketClient] = []
    pcs: list[RTCPeerConnection] = []
    listeners = [Listener(), Listener()]
    try:
        console, shopper, cid, _token = await _call(a, b, advisor, sockets)
        boards = [
            await staff_socket(a, await make_staff(Role.SUPERVISOR)),
            await staff_socket(b, await make_staff(Role.SUPERVISOR)),
        ]
        sockets += boards
        for listener, board in zip(listeners, boards, strict=True):
            await listener.start(board, cid)
        for party in (shopper, console):
            await party.wait_for("monitor.state", lambda s: s["legs"] is True, within=10)
        shopper_pc, shopper_answer = await _leg(
            shopper, "monitor.leg_offer", {"consultation_id": cid}, sample
        )
        advisor_pc, advisor_answer = await _leg(
            console, "monitor.leg_offer", {"consultation_id": cid}, sample
        )
        pcs += [shopper_pc, advisor_pc]
        # One process holds the call: the advisor's offer, made on B, was answered there.
        assert shopper_answer["placement"] == advisor_answer["placement"]

        async def everything_arrives() -> bool:
            for listener in listeners:
                for participant in ("shopper", "advisor"):
                    for kind in ("video", "audio"):
                        if await listener.packets(participant, kind) < 20:
                            return False
            return True

        await wait_until(everything_arrives, within=20)

        # A recording started now records the same two legs: the parties offer nothing more.
        started = await console.ok("recording.start", {"consultation_id": cid})
        accepted = await shopper.ok("recording.consent", {"recording_id": started["id"], "accept": True})
        assert accepted["status"] == "recording"
        holder = shopper_answer["placement"]
        data = cluster.tmp / "data"

        async def both_recorded() -> bool:
            sizes = _spooled(data, started["id"], holder)
            return sizes.get("shopper", 0) > 20_000 and sizes.get("advisor", 0) > 20_000

        await wait_until(both_recorded, within=20)
        # The supervisors leave; the recording keeps the legs.
        for listener, board in zip(listeners, boards, strict=True):
            await board.ok("monitor.stop", {"monitor_id": listener.monitor["monitor_id"]})
        for party in (shopper, console):
            await party.wait_for("monitor.state", lambda s: s["legs"] is False, within=10)
        before = _spooled(data, started["id"], holder)

        async def still_recording() -> bool:
            now = _spooled(data, started["id"], holder)
            return all(now.get(p, 0) > before[p] + 10_000 for p in ("shopper", "advisor"))

        await wait_until(still_recording, within=20)
        await console.ok("recording.stop", {"recording_id": started["id"]})
        ready = await console.wait_for(
            "recording.updated", lambda r: r["id"] == started["id"] and r["status"] == "ready", within=30
        )
        assert ready["incomplete"] is False
        assert ready["gaps"] == []
        assert len(shopper_pc.getSenders()) == 2  # one leg, never a second connection
    finally:
        for listener in listeners:
            await listener.close()
        await _close_all(sockets, pcs)
        cluster.stop_all()


async def test_a_recording_survives_kill_9_of_its_legs_process_and_says_what_is_missing(
    cluster: SharedCluster, redis_up: None, make_staff: Any, sample: SamplePackets
) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    await asyncio.gather(wait_ready(a), wait_ready(b))
    advisor = await make_staff(Role.ADVISOR)
    sockets: list[SocketClient] = []
    pcs: list[RTCPeerConnection] = []
    data = cluster.tmp / "data"
    try:
        console, shopper, cid, token = await _call(a, b, advisor, sockets)
        started = await console.ok("recording.start", {"consultation_id": cid})
        await shopper.ok("recording.consent", {"recording_id": started["id"], "accept": True})
        rid = started["id"]
        ref = {"recording_id": rid}
        # The shopper's offer (on A) places the call's legs on A; the advisor's, made on B, goes there.
        shopper_pc, first = await _leg(shopper, "leg.offer", ref, sample)
        advisor_pc, second = await _leg(console, "leg.offer", ref, sample)
        pcs += [shopper_pc, advisor_pc]
        dead = first["placement"]
        assert second["placement"] == dead

        async def a_wrote_both() -> bool:
            sizes = _spooled(data, rid, dead)
            return sizes.get("shopper", 0) > 60_000 and sizes.get("advisor", 0) > 60_000

        await wait_until(a_wrote_both, within=30)
        os.kill(a.proc.pid, signal.SIGKILL)
        assert await asyncio.to_thread(a.proc.wait, 10) == -signal.SIGKILL
        for pc in (shopper_pc, advisor_pc):
            await pc.close()
        killed_at = asyncio.get_running_loop().time()

        # B takes the call over and tells the advisor (on B) to offer again.
        moved = await console.wait_for("leg.moved", lambda m: m["consultation_id"] == cid, within=10)
        assert moved["placement"] != dead
        # The scenario's outage, not a wait for an event: browsers notice a dead leg and offer
        # again within a couple of seconds; the recording must then say who was missing when.
        await asyncio.sleep(max(0.0, killed_at + OUTAGE_SECONDS - asyncio.get_running_loop().time()))
        advisor_pc, again = await _leg(console, "leg.offer", ref, sample)
        pcs.append(advisor_pc)
        assert again["placement"] == moved["placement"]
        # The shopper's page reconnects (to B) and finds its leg's process gone.
        shopper2 = await shopper_socket(b, token)
        sockets.append(shopper2)
        where = await shopper2.ok("leg.placement", {"consultation_id": cid})
        assert where["placement"] == moved["placement"]
        shopper_pc, _ = await _leg(shopper2, "leg.offer", ref, sample)
        pcs.append(shopper_pc)

        async def b_wrote_both() -> bool:
            sizes = _spooled(data, rid, moved["placement"])
            return sizes.get("shopper", 0) > 30_000 and sizes.get("advisor", 0) > 30_000

        await wait_until(b_wrote_both, within=30)
        # Nobody deleted what the dead process wrote.
        assert set(_spooled(data, rid, dead)) == {"shopper", "advisor"}
        await console.ok("recording.stop", {"recording_id": rid})
        ready = await console.wait_for(
            "recording.updated", lambda r: r["id"] == rid and r["status"] in ("ready", "failed"), within=40
        )
        assert ready["status"] == "ready", ready
        assert ready["incomplete"] is True
        missing = {g["participant"]: g for g in ready["gaps"]}
        assert set(missing) == {"shopper", "advisor"}, ready["gaps"]
        for gap in ready["gaps"]:
            assert 0 < gap["from_ms"] < gap["to_ms"] < ready["duration_ms"], gap

        # The API says so too, and the file holds both parties before and after the gap.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            login = {"email": advisor.email, "password": advisor.password}
            async with http.post(b.url + "/api/v1/auth/login", json=login) as response:
                assert response.status == 200
            async with http.get(b.url + f"/api/v1/recordings/{rid}") as response:
                body = await response.json()
                assert response.status == 200, body
            assert body["incomplete"] is True
            assert body["gaps"] == ready["gaps"]
            async with http.get(b.url + ready["media_url"]) as response:
                assert response.status == 200
                media = await response.read()
        with av.open(io.BytesIO(media)) as container:
            titles = [s.metadata.get("title") for s in container.streams]
            assert titles == ["shopper video", "shopper audio", "advisor video", "advisor audio"]
            seen: dict[str, list[int]] = {t: [] for t in titles}
            for packet in container.demux():
                if packet.size and packet.pts is not None:
                    seen[packet.stream.metadata.get("title")].append(
                        int(packet.pts * packet.time_base * 1000)
                    )
        for participant, gap in missing.items():
            times = seen[f"{participant} video"]
            assert any(t < gap["from_ms"] for t in times), (participant, "salvaged part missing")
            assert any(t > gap["to_ms"] for t in times), (participant, "part after the move missing")
        # The spool is empty: salvaged parts were stored, the join cleaned its own.
        assert not [p for p in (data / "recording-spool").rglob("*") if p.is_file()]
    finally:
        await _close_all(sockets, pcs)
        cluster.stop_all()


async def test_a_supervisor_on_the_surviving_process_listens_again_after_kill_9_of_the_calls_process(
    cluster: SharedCluster, redis_up: None, make_staff: Any, sample: SamplePackets
) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    await asyncio.gather(wait_ready(a), wait_ready(b))
    advisor = await make_staff(Role.ADVISOR)
    sockets: list[SocketClient] = []
    pcs: list[RTCPeerConnection] = []
    listeners = [Listener(), Listener(), Listener()]
    try:
        console, shopper, cid, token = await _call(a, b, advisor, sockets)
        # The first supervisor (on A) places the call on A; the second listens from B.
        on_a = await staff_socket(a, await make_staff(Role.SUPERVISOR))
        on_b = await staff_socket(b, await make_staff(Role.SUPERVISOR))
        sockets += [on_a, on_b]
        await listeners[0].start(on_a, cid)
        first = await listeners[1].start(on_b, cid)
        ref = {"consultation_id": cid}
        shopper_pc, placed = await _leg(shopper, "monitor.leg_offer", ref, sample)
        advisor_pc, _ = await _leg(console, "monitor.leg_offer", ref, sample)
        pcs += [shopper_pc, advisor_pc]

        async def hears_both(listener: Listener) -> bool:
            for participant in ("shopper", "advisor"):
                for kind in ("video", "audio"):
                    if await listener.packets(participant, kind) < 20:
                        return False
            return True

        await wait_until(lambda: hears_both(listeners[1]), within=20)
        os.kill(a.proc.pid, signal.SIGKILL)
        assert await asyncio.to_thread(a.proc.wait, 10) == -signal.SIGKILL
        for pc in (shopper_pc, advisor_pc):
            await pc.close()

        # B took the call over: the supervisor there is told her monitor moved, and listens again.
        ended = await on_b.wait_for(
            "monitor.ended", lambda m: m["monitor_id"] == first["monitor_id"], within=10
        )
        assert ended["reason"] == "moved"
        await listeners[1].close()
        again = await listeners[2].start(on_b, cid)
        assert again["monitor_id"] != first["monitor_id"]
        moved = await console.wait_for("leg.moved", lambda m: m["consultation_id"] == cid, within=10)
        assert moved["placement"] != placed["placement"]
        # The parties offer their legs again (the shopper from B, after reconnecting).
        shopper2 = await shopper_socket(b, token)
        sockets.append(shopper2)
        assert (await shopper2.ok("leg.placement", ref))["placement"] == moved["placement"]
        state = await shopper2.ok("monitor.current", ref)
        assert state["legs"] is True
        shopper_pc, replaced = await _leg(shopper2, "monitor.leg_offer", ref, sample)
        advisor_pc, _ = await _leg(console, "monitor.leg_offer", ref, sample)
        pcs += [shopper_pc, advisor_pc]
        assert replaced["placement"] == moved["placement"]
        await wait_until(lambda: hears_both(listeners[2]), within=20)
    finally:
        for listener in listeners:
            await listener.close()
        await _close_all(sockets, pcs)
        cluster.stop_all()
