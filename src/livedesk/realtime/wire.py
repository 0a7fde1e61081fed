"""How Socket.IO packets are written and read: JSON through orjson, and no binary events.

Every chat message is JSON-encoded twice (the sender's ack and the fan-out) and every client
event decoded once, so the codec is on the hot path: orjson does in about a microsecond what
the standard library's encoder does in ten. orjson is also safer in two corners: it writes
NaN as ``null`` rather than the ``NaN`` browsers cannot parse, and reads an integer beyond 64
bits as a float instead of parsing an arbitrarily long digit string.

livedesk never sends binary attachments over Socket.IO (files go over REST), so outgoing
packets skip python-socketio's walk of every payload looking for ``bytes``; a payload that
held bytes by mistake would fail loudly in the encoder rather than go out as an attachment.
Binary packets that clients send are still parsed as the protocol says (and then refused by
the payload validation, which expects JSON objects).
"""

from __future__ import annotations

from typing import Any

import orjson
from socketio import packet

_OPTIONS = orjson.OPT_NON_STR_KEYS


class OrjsonCodec:
    """The ``json`` module shape python-socketio and python-engineio call (``dumps``/``loads``
    with the standard library's keyword arguments, which orjson does not need)."""

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        return orjson.dumps(obj, option=_OPTIONS).decode()

    @staticmethod
    def loads(data: str | bytes, **_: Any) -> Any:
        return orjson.loads(data)


class WirePacket(packet.Packet):  # type: ignore[misc]
    json = OrjsonCodec

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        return False


def encoded_size(value: Any) -> int:
    """The size of ``value`` as JSON on the wire; anything JSON cannot hold reads as
    ``default`` text, as the payload checks expect."""
    return len(orjson.dumps(value, default=str, option=_OPTIONS))
