"""Recording benchmark: how many participant streams one process records without re-encoding.

    python bench/recording.py [--quick] [--calls N] [--seconds S]

The receiving side is livedesk's own media path — ``calls.legs.LegRegistry`` legs (aiortc
peer connections with the encoded-frame tap) writing WebM parts with ``calls.webm.WebmWriter``
by stream copy, exactly what ``recording.recorder.Recorder.open_leg`` builds (the database and
Socket.IO around it cost a few queries per leg, not per frame, and are left out).

The senders run in a separate process so their cost is not counted: per call two aiortc peer
connections (shopper and advisor), each sending real VP8 640×480@30 (~1.5–1.8 Mbit/s) and
Opus packets from a prepared file, as they are — a track whose ``recv()`` returns
``av.Packet`` is packetised by aiortc without encoding. Offers and answers go over a pipe.

Measured over the steady window (after every leg has its first key frame):

- ``cpu_pct_per_stream``: the receiving process's CPU time / wall time / streams, in % of one core;
- ``frames_lost_pct``: frames the senders sent vs frames the writers wrote (video + audio),
  counted from the first key frame of each leg to the end, after a drain;
- ``loop_lag_p99_ms``: p99 of how late a 10 ms timer fires on the receiving event loop.

Progress goes to stdout as ``[bench] …`` lines; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import fcntl
import json
import multiprocessing
import os
import sys
import tempfile
import termios
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from livedesk.calls.legs import LegRegistry
from livedesk.calls.media_sample import PacketTrack, load_sample, make_sample
from livedesk.calls.webm import WebmWriter

SAMPLE_SECONDS = 6.0
DRAIN_SECONDS = 20.0
SAMPLE_CACHE = Path(tempfile.gettempdir()) / f"livedesk-bench-sample-640x480-{int(SAMPLE_SECONDS)}s-v1.webm"


def backlog(legs: list[Any]) -> int:
    """Datagrams (bytes of the next one, per socket) still queued for the legs: in the kernel's
    socket buffers and in aioice's receive queue. Reaches into aiortc/aioice: bench code only."""
    total = 0
    for leg in legs:
        for transceiver in leg.pc.getTransceivers():
            connection = getattr(
                getattr(transceiver.receiver.transport, "transport", None), "_connection", None
            )
            if connection is None:
                continue
            total += connection._queue.qsize()
            for protocol in connection._protocols:
                sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
                if sock is not None:
                    pending = array.array("i", [0])
                    fcntl.ioctl(sock.fileno(), termios.FIONREAD, pending)
                    total += pending[0]
    return total


def rtp_counts(legs: list[Any]) -> tuple[int, int]:
    """(received, lost) RTP packets of the media streams (not retransmissions) by the legs'
    own receive statistics — loss between the browser and the recorder, before NACK/RTX
    repairs any of it. Bench code, reaching into aiortc."""
    received = lost = 0
    for leg in legs:
        for receiver in leg.receivers.values():
            rtx = set(getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {}))
            for ssrc, stream in getattr(receiver, "_RTCRtpReceiver__remote_streams", {}).items():
                if ssrc in rtx:
                    continue
                received += stream.packets_received
                lost += max(0, stream.packets_expected - stream.packets_received)
    return received, lost


def _unsent(pcs: list[RTCPeerConnection]) -> int:
    """Bytes the senders' UDP transports still buffer (bench code, reaching into aioice)."""
    total = 0
    for pc in pcs:
        for transceiver in pc.getTransceivers():
            ice = getattr(transceiver.sender.transport, "transport", None)
            for protocol in getattr(getattr(ice, "_connection", None), "_protocols", []):
                if protocol.transport is not None:
                    total += protocol.transport.get_write_buffer_size()
    return total


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- senders (child process) ----------------------------------------------------------------


def sender_main(conn: Connection, sample_path: str, streams: int) -> None:
    asyncio.run(_senders(conn, Path(sample_path), streams))


async def _senders(conn: Connection, sample_path: Path, streams: int) -> None:
    sample = load_sample(sample_path)
    loop = asyncio.get_running_loop()
    pcs: list[RTCPeerConnection] = []
    tracks: list[PacketTrack] = []
    offers = []
    for _ in range(streams):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pair = [PacketTrack(sample, "video"), PacketTrack(sample, "audio")]
        for track in pair:
            pc.addTransceiver(track, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        offers.append(pc.localDescription.sdp)
        pcs.append(pc)
        tracks += pair
    # All offers at once, all answers at once: setup stays short on a busy machine.
    conn.send(("offers", offers))
    kind, answers = await loop.run_in_executor(None, conn.recv)
    assert kind == "answers"
    for pc, sdp in zip(pcs, answers, strict=True):
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
    conn.send(("ready", None))
    while True:
        kind, _ = await loop.run_in_executor(None, conn.recv)
        if kind == "counts":
            conn.send(("counts", [t.sent for t in tracks]))
        elif kind == "stop":
            for track in tracks:
                track.stop()
            # A starved sender may still hold packets in its sockets' write buffers: they are
            # on their way, not lost. Answer once they are out (at most 10 s).
            deadline = time.monotonic() + 10
            while _unsent(pcs) and time.monotonic() < deadline:  # noqa: ASYNC110 - no event for it
                await asyncio.sleep(0.05)
            conn.send(("stopped", [t.sent for t in tracks]))
        elif kind == "close":
            # Only once the receiver has drained: closing earlier would end its legs with
            # packets still in their socket buffers.
            for pc in pcs:
                await pc.close()
            conn.send(("closed", None))
            return


# --- receiver (this process) ----------------------------------------------------------------


async def measure(calls: int, seconds: float, sample_path: Path, workdir: Path) -> dict[str, Any]:
    streams = calls * 2
    parent, child = multiprocessing.Pipe()
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=sender_main, args=(child, str(sample_path), streams), daemon=True)
    proc.start()
    loop = asyncio.get_running_loop()
    registry = LegRegistry()
    writers: list[WebmWriter] = []
    legs = []
    try:
        kind, offers = await loop.run_in_executor(None, parent.recv)
        assert kind == "offers"

        async def answer(i: int, sdp: str) -> str:
            participant = "shopper" if i % 2 == 0 else "advisor"
            leg = await registry.open(uuid.uuid4(), participant, RTCConfiguration(iceServers=[]))
            writer = WebmWriter(workdir / f"leg-{i}.webm", expect_video=True)
            leg.add_sink(writer.write)
            writers.append(writer)
            legs.append(leg)
            return (await leg.answer(RTCSessionDescription(sdp=sdp, type="offer"))).sdp

        answers = await asyncio.gather(*(answer(i, sdp) for i, sdp in enumerate(offers)))
        parent.send(("answers", answers))
        kind, _ = await loop.run_in_executor(None, parent.recv)
        assert kind == "ready"
        say(f"{streams} legs negotiated; waiting for every leg's first key frame")
        deadline = time.monotonic() + 30
        while not all(w.opened for w in writers):
            for leg, writer in zip(legs, writers, strict=True):
                if not writer.has_keyframe:
                    await leg.request_keyframe()
            if time.monotonic() > deadline:
                raise SystemExit("not every leg received a key frame within 30 s")
            await asyncio.sleep(0.2)

        lags: list[float] = []
        stop_lag = asyncio.Event()

        async def lag_probe() -> None:
            while not stop_lag.is_set():
                t = loop.time()
                await asyncio.sleep(0.01)
                lags.append(max(0.0, (loop.time() - t - 0.01) * 1000))

        # Frames are counted from here (senders' counters and writers' counters together).
        parent.send(("counts", None))
        _, sent_before = await loop.run_in_executor(None, parent.recv)
        written_before = sum(w.stats.video_frames + w.stats.audio_frames for w in writers)
        video_before = sum(w.stats.video_frames for w in writers)
        audio_before = sum(w.stats.audio_frames for w in writers)
        rtp_before = rtp_counts(legs)
        probe = asyncio.ensure_future(lag_probe())
        cpu0, wall0 = time.process_time(), time.monotonic()
        say(f"measuring {seconds:.0f} s")
        await asyncio.sleep(seconds)
        cpu1, wall1 = time.process_time(), time.monotonic()
        stop_lag.set()
        await probe
        rtp_after = rtp_counts(legs)
        states: dict[str, int] = {}
        for leg in legs:
            states[leg.state] = states.get(leg.state, 0) + 1
        parent.send(("stop", None))
        _, sent_after = await loop.run_in_executor(None, parent.recv)
        # A receiver that got less CPU than it needed is behind, not lossy, as long as its
        # socket buffers held: let it catch up (queued datagrams in the kernel and in aioice
        # read to the end, the writers' count settled), at most DRAIN_SECONDS.
        drain_started = time.monotonic()
        last = -1
        while time.monotonic() - drain_started < DRAIN_SECONDS:
            now_written = sum(w.stats.video_frames + w.stats.audio_frames for w in writers)
            if now_written == last and backlog(legs) == 0:
                break
            last = now_written
            await asyncio.sleep(0.5)
        drain_s = time.monotonic() - drain_started
        written_after = sum(w.stats.video_frames + w.stats.audio_frames for w in writers)
        written_video = sum(w.stats.video_frames for w in writers) - video_before
        written_audio = sum(w.stats.audio_frames for w in writers) - audio_before
        parent.send(("close", None))
        await loop.run_in_executor(None, parent.recv)
        sent_video = sum(sent_after[0::2]) - sum(sent_before[0::2])
        sent_audio = sum(sent_after[1::2]) - sum(sent_before[1::2])
        sent = sum(sent_after) - sum(sent_before)
        written = written_after - written_before
        lost_pct = max(0.0, (sent - written) / sent * 100) if sent else 100.0
        cpu_pct = (cpu1 - cpu0) / (wall1 - wall0) * 100
        video_bytes = sum(w.stats.bytes_in for w in writers)
        return {
            "calls": calls,
            "streams": streams,
            "seconds": round(wall1 - wall0, 1),
            "cpu_pct_total": round(cpu_pct, 1),
            "cpu_pct_per_stream": round(cpu_pct / streams, 2),
            "frames_sent": sent,
            "frames_written": written,
            # Parts whose audio and video were placed by the senders' RTCP reports.
            "legs_synced_by_sender_reports": sum(w.stats.synced for w in writers),
            "frames_lost_pct": round(lost_pct, 3),
            "video_frames_lost_pct": round(
                max(0.0, (sent_video - written_video) / max(1, sent_video) * 100), 3
            ),
            "audio_frames_lost_pct": round(
                max(0.0, (sent_audio - written_audio) / max(1, sent_audio) * 100), 3
            ),
            "rtp_packets_lost_pct": round(
                (rtp_after[1] - rtp_before[1])
                / max(1, (rtp_after[0] - rtp_before[0]) + (rtp_after[1] - rtp_before[1]))
                * 100,
                3,
            ),
            "loop_lag_p50_ms": round(percentile(lags, 0.5), 2),
            "loop_lag_p99_ms": round(percentile(lags, 0.99), 2),
            "leg_states_at_end": states,
            "drain_s": round(drain_s, 1),
            "mbit_per_stream": round(
                video_bytes * 8 / max(1e-9, time.monotonic() - wall0) / streams / 1e6, 2
            ),
        }
    finally:
        await registry.close_all()
        for writer in writers:
            writer.close()
        if proc.is_alive():
            proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()


def _udp_drops() -> int:
    """Datagrams the kernel dropped for want of socket buffer space (all of this host's UDP)."""
    try:
        lines = [
            line.split()
            for line in Path("/proc/net/snmp").read_text().splitlines()
            if line.startswith("Udp:")
        ]
        return int(lines[1][lines[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="8 calls for 15 s (within a minute)")
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the sample and the recorded files here")
    args = parser.parse_args()
    seconds = args.seconds or (15.0 if args.quick else 60.0)
    started = time.monotonic()
    drops_before = _udp_drops()
    with tempfile.TemporaryDirectory(prefix="livedesk-bench-rec-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        # Encoded once per machine (kept in the temp folder): a few seconds of CPU saved per run.
        sample_path = args.keep / "sample-640x480.webm" if args.keep else SAMPLE_CACHE
        if not sample_path.exists():
            say("encoding the VP8/Opus sample once (640x480@30)")
            make_sample(sample_path, seconds=SAMPLE_SECONDS)
        say(f"cores: {os.cpu_count()}; {args.calls} calls = {args.calls * 2} streams")
        result = asyncio.run(measure(args.calls, seconds, sample_path, workdir))
    result["mode"] = "quick" if args.quick else "full"
    # The machine is shared: how busy it was says how to read the figures.
    result["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    result["udp_receive_buffer_drops"] = _udp_drops() - drops_before
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    result["budgets"] = {"calls": 8, "cpu_pct_per_stream": 5.0, "frames_lost_pct": 1.0}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
