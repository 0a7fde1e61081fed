"""The aiortc internals the recorder relies on are where it expects them. If aiortc changes
(it is pinned exactly in pyproject.toml for this reason), these fail and say what moved."""

from __future__ import annotations

import asyncio
import inspect
import queue
import uuid
from importlib.metadata import version

import aiortc
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpCodecParameters, RTCRtpSender
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter
from aiortc.rtcrtpreceiver import RTCRtpReceiver, TimestampMapper, decoder_worker
from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket

from livedesk.calls.legs import LegRegistry
from livedesk.calls.media import (
    DECODER_QUEUE_ATTR,
    DECODER_THREAD_ATTR,
    ESTIMATOR_ATTR,
    RTCP_HANDLER_ATTR,
    RTX_SSRC_ATTR,
    TIMESTAMP_MAPPER_ATTR,
    EncodedFrame,
    HookPointMoved,
    ThrottledEstimator,
    enlarge_receive_buffers,
    install_tap,
    throttle_remb,
)


def test_aiortc_is_the_pinned_version() -> None:
    assert version("aiortc") == "1.16.0", (
        "aiortc is no longer 1.16.0: re-check livedesk/calls/media.py's hook points before pinning it"
    )


def test_the_decoder_worker_reads_codec_and_encoded_frame_pairs_from_a_queue() -> None:
    params = list(inspect.signature(decoder_worker).parameters)
    assert params == ["loop", "input_q", "output_q", "decode_error"], (
        f"aiortc.rtcrtpreceiver.decoder_worker changed its parameters to {params}: the recording tap "
        "replaces input_q and must be revisited"
    )
    source = inspect.getsource(decoder_worker)
    assert "input_q.get()" in source, "aiortc.rtcrtpreceiver.decoder_worker no longer calls input_q.get()"
    assert "codec, encoded_frame = task" in source, (
        "aiortc.rtcrtpreceiver.decoder_worker no longer takes (codec, encoded_frame) items"
    )


def test_the_receiver_feeds_its_decoder_queue_with_jitter_frames() -> None:
    source = inspect.getsource(RTCRtpReceiver)
    assert "self.__decoder_queue.put((codec, encoded_frame))" in source, (
        "RTCRtpReceiver._handle_rtp_packet no longer puts (codec, encoded_frame) on __decoder_queue"
    )
    assert "self.__decoder_queue," in inspect.getsource(RTCRtpReceiver.receive), (
        "RTCRtpReceiver.receive no longer hands __decoder_queue to the decoder thread"
    )
    assert "self.__decoder_queue.put(None)" in source, "RTCRtpReceiver no longer stops the decoder with None"
    frame = JitterFrame(data=b"x", timestamp=1)
    assert (frame.data, frame.timestamp) == (b"x", 1), "aiortc.jitterbuffer.JitterFrame lost data/timestamp"


def test_the_receiver_can_send_a_picture_loss_indication() -> None:
    assert list(inspect.signature(RTCRtpReceiver._send_rtcp_pli).parameters) == ["self", "media_ssrc"], (
        "RTCRtpReceiver._send_rtcp_pli(media_ssrc) moved: the leg's keyframe requests need it"
    )
    assert hasattr(RTCRtpReceiver, "getSynchronizationSources")


async def test_a_fresh_receiver_has_the_private_attributes_and_takes_the_tap() -> None:
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video", direction="recvonly")
        receiver = transceiver.receiver
        assert isinstance(getattr(receiver, DECODER_QUEUE_ATTR), queue.Queue), (
            f"RTCRtpReceiver.{DECODER_QUEUE_ATTR} is gone or no longer a queue.Queue"
        )
        assert getattr(receiver, DECODER_THREAD_ATTR) is None
        frames: list[object] = []
        tap = install_tap(receiver, "video", frames.append)
        assert getattr(receiver, DECODER_QUEUE_ATTR) is tap
        # The tap answers the decoder thread's get() only once stopped, with the end marker.
        tap.put(None)
        assert await asyncio.to_thread(tap.get) is None
    finally:
        await pc.close()


async def test_the_tap_refuses_a_receiver_without_the_hook_point() -> None:
    class NotAReceiver:
        pass

    with pytest.raises(HookPointMoved, match="cannot attach"):
        install_tap(NotAReceiver(), "video", lambda f: None)  # type: ignore[arg-type]
    assert aiortc.__version__ == "1.16.0"


async def test_the_legs_udp_sockets_are_reachable_for_a_bigger_receive_buffer() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        assert enlarge_receive_buffers(pc, 1 << 20) >= 1, (
            "RTCIceTransport._connection._protocols[].transport no longer leads to the UDP sockets"
        )
    finally:
        await pc.close()


async def test_the_leg_answers_vp8_and_opus_whatever_the_browser_preferred() -> None:
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    legs = LegRegistry()
    try:
        video = sender.addTransceiver("video", direction="sendonly")
        h264_first = sorted(
            RTCRtpSender.getCapabilities("video").codecs, key=lambda c: c.mimeType.lower() != "video/h264"
        )
        video.setCodecPreferences(h264_first)
        sender.addTransceiver("audio", direction="sendonly")
        await sender.setLocalDescription(await sender.createOffer())
        assert "H264" in sender.localDescription.sdp.split("m=video")[1].split("a=rtpmap:")[1]
        leg = await legs.open(uuid.uuid4(), "shopper", RTCConfiguration(iceServers=[]))
        answer = await leg.answer(sender.localDescription)
        video_section = answer.sdp.split("m=video")[1].split("m=audio")[0]
        assert "VP8/90000" in video_section
        assert "H264" not in video_section
        audio_section = answer.sdp.split("m=audio")[1]
        assert "opus/48000" in audio_section
        assert "PCMU" not in audio_section
    finally:
        await legs.close_all()
        await sender.close()


async def test_the_video_receivers_bandwidth_estimate_is_throttled() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        assert hasattr(receiver, ESTIMATOR_ATTR), (
            f"RTCRtpReceiver.{ESTIMATOR_ATTR} is gone: the REMB throttle cannot attach"
        )
        assert throttle_remb(receiver)
        throttled = getattr(receiver, ESTIMATOR_ATTR)
        assert isinstance(throttled, ThrottledEstimator)
        assert list(inspect.signature(throttled.inner.add).parameters) == [
            "arrival_time_ms",
            "abs_send_time",
            "payload_size",
            "ssrc",
        ], "aiortc.rate.RemoteBitrateEstimator.add changed its parameters"
        assert not throttle_remb(receiver)  # once is enough

        class Always:
            def add(self, **_: int) -> tuple[int, list[int]]:
                return 1_000_000, [1]

        throttled.inner = Always()
        answers = [throttled.add(t, 0, 1000, 1) for t in range(0, 1200, 10)]
        assert [t * 10 for t, a in enumerate(answers) if a is not None] == [0, 500, 1000]
        audio = pc.addTransceiver("audio", direction="recvonly").receiver
        assert not throttle_remb(audio)
    finally:
        await pc.close()


def test_sender_reports_reach_the_receiver_by_the_method_the_tap_wraps() -> None:
    route = inspect.getsource(RtpRouter.route_rtcp)
    moved = "aiortc's RtpRouter.route_rtcp no longer routes a sender report to the receiver of its SSRC"
    assert "isinstance(packet, RtcpSrPacket)" in route, moved
    assert "self.ssrc_table.get(packet.ssrc)" in route, moved
    assert "recipient._handle_rtcp_packet(packet)" in inspect.getsource(RTCDtlsTransport._handle_rtcp_data), (
        "RTCDtlsTransport no longer calls recipient._handle_rtcp_packet(packet): the sender-report "
        "hook (an instance attribute of that name) would never run"
    )
    assert "isinstance(packet, RtcpSrPacket)" in inspect.getsource(RTCRtpReceiver._handle_rtcp_packet)
    info = RtcpSenderInfo(ntp_timestamp=1 << 32, rtp_timestamp=2, packet_count=0, octet_count=0)
    assert (info.ntp_timestamp, info.rtp_timestamp) == (1 << 32, 2), "RtcpSenderInfo lost its fields"


def test_the_receivers_timestamp_mapper_subtracts_its_origin() -> None:
    assert "self.__timestamp_mapper.map(" in inspect.getsource(RTCRtpReceiver._handle_rtp_packet), (
        "RTCRtpReceiver no longer maps frame timestamps with its TimestampMapper before queuing them"
    )
    mapper = TimestampMapper()
    assert mapper.map(4_000_000_000) == 0
    assert mapper.map(4_000_000_000 + 3000) == 3000
    assert mapper.map(1000) == 2**32 - 4_000_000_000 + 1000  # wrapped
    # The tap rebuilds the absolute timestamp as mapped + _origin (mod 2**32).
    assert (mapper.map(2000) + mapper._origin) % 2**32 == 2000, "TimestampMapper._origin changed meaning"


async def test_the_tap_gives_frames_their_sender_time_from_the_senders_report() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("audio", direction="recvonly").receiver
        for name in (TIMESTAMP_MAPPER_ATTR, RTX_SSRC_ATTR, RTCP_HANDLER_ATTR):
            assert hasattr(receiver, name), (
                f"RTCRtpReceiver.{name} is gone: the sender-report hook cannot attach"
            )
        frames: list[EncodedFrame] = []
        tap = install_tap(receiver, "audio", frames.append)
        mapper = getattr(receiver, TIMESTAMP_MAPPER_ATTR)
        codec = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48_000, channels=2, payloadType=111)
        first = 2**32 - 48_000  # one second before the RTP timestamp wraps
        # What aiortc does with a complete frame: map its timestamp, then queue it.
        tap.put((codec, JitterFrame(data=b"a", timestamp=mapper.map(first))))
        assert frames[0].sender_time is None  # no report yet
        ntp = 3_900_000_000
        report = RtcpSrPacket(
            ssrc=1234,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=ntp << 32, rtp_timestamp=first, packet_count=1, octet_count=1
            ),
        )
        await getattr(receiver, RTCP_HANDLER_ATTR)(report)
        tap.put((codec, JitterFrame(data=b"b", timestamp=mapper.map(96_000 - 48_000))))
        assert frames[1].timestamp == 96_000
        assert frames[1].sender_time == pytest.approx(ntp + 2.0)
        # aiortc still handled the report itself (its statistics).
        stats = await receiver.getStats()
        assert any(s.type == "remote-outbound-rtp" for s in stats.values())
    finally:
        await pc.close()
