"""The Socket.IO wire format (realtime/wire.py) and the chat message's JSON built by hand
(chat_schemas.ChatMessageOut.json_of_stored): both stand in for slower library paths on the
chat hot path, so each is held to what the library would have produced."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime

import pytest
from socketio import packet

from livedesk.consultations.chat_schemas import ChatMessageOut
from livedesk.consultations.chat_store import StoredMessage
from livedesk.models import MessageKind, SenderKind
from livedesk.realtime.wire import OrjsonCodec, WirePacket, encoded_size


def _stored(**changes: object) -> StoredMessage:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "consultation_id": uuid.uuid4(),
        "seq": 7,
        "client_id": "client-0001",
        "sender": SenderKind.SHOPPER,
        "sender_staff_id": None,
        "kind": MessageKind.TEXT,
        "body": "こんにちは",
        "data": {},
        "created_at": datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC),
        "created": True,
        "shopper_id": uuid.uuid4(),
        "advisor_id": None,
    }
    fields.update(changes)
    return StoredMessage(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "message",
    [
        _stored(),
        _stored(created_at=datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)),
        _stored(created_at=datetime(2026, 3, 29, 1, 0, 0, 5, tzinfo=UTC)),
        _stored(
            sender=SenderKind.STAFF,
            sender_staff_id=uuid.uuid4(),
            kind=MessageKind.PRODUCT,
            body="",
            data={"sku": "A-1", "name": "Tea", "price_minor": 1200, "currency": "JPY"},
        ),
    ],
)
def test_a_messages_json_is_what_the_model_writes(message: StoredMessage) -> None:
    assert ChatMessageOut.json_of_stored(message) == ChatMessageOut.of_stored(message).model_dump(mode="json")


def test_packets_read_back_as_the_stock_packet_reads_them() -> None:
    data = [{"ok": True, "data": {"seq": 3, "body": "こんにちは", "nested": [1, 2.5, None]}}]
    ours = WirePacket(packet.ACK, namespace="/shopper", id=12, data=data).encode()
    stock = packet.Packet(packet.ACK, namespace="/shopper", id=12, data=data).encode()
    assert ours.startswith("3/shopper,12[")
    decoded = packet.Packet(encoded_packet=ours)
    assert (decoded.packet_type, decoded.namespace, decoded.id, decoded.data) == (
        packet.ACK,
        "/shopper",
        12,
        data,
    )
    assert json.loads(ours[len("3/shopper,12") :]) == json.loads(stock[len("3/shopper,12") :])
    incoming = WirePacket(encoded_packet='2/staff,5["chat.send",{"body":"hi"}]')
    assert (incoming.packet_type, incoming.id, incoming.data) == (
        packet.EVENT,
        5,
        ["chat.send", {"body": "hi"}],
    )


def test_the_codec_writes_only_what_browsers_parse() -> None:
    # The standard library would write NaN, which JSON.parse rejects.
    assert json.loads(OrjsonCodec.dumps({"x": math.nan})) == {"x": None}
    with pytest.raises(ValueError, match="unexpected character"):
        OrjsonCodec.loads('{"x": NaN}')
    with pytest.raises(TypeError):
        OrjsonCodec.dumps({"x": b"bytes go over REST"})


def test_encoded_size_counts_utf8_bytes_and_reads_the_rest_as_text() -> None:
    assert encoded_size(["é"]) == len('["é"]'.encode())
    assert encoded_size([{"at": b"x"}]) == len(b'[{"at":"b\'x\'"}]')
