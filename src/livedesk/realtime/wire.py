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

Every event a client sends with an ack id gets an ack, even one that cannot be read: the
library would raise while decoding it and the client would wait forever (the browser's outbox
with it). Such an event is handed on as the ``UNDECODABLE`` event, which the dispatcher
refuses with ``bad_packet``. A lone surrogate escape (``"\\ud800"``, which ``JSON.stringify``
writes for broken text) is read rather than refused here, so the payload check can name its
field (``kit/inputs.loads``).
"""

from __future__ import annotations

from typing import Any

import orjson
from socketio import packet

from livedesk.kit import inputs

_OPTIONS = orjson.OPT_NON_STR_KEYS
# The event name an unreadable event is handed on under (a NUL no client-sent name passes).
UNDECODABLE = "\x00undecodable"


class OrjsonCodec:
    """The ``json`` module shape python-socketio and python-engineio call (``dumps``/``loads``
    with the standard library's keyword arguments, which orjson does not need)."""

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        return orjson.dumps(obj, option=_OPTIONS).decode()

    @staticmethod
    def loads(data: str | bytes, **_: Any) -> Any:
        return inputs.loads(data)


class WirePacket(packet.Packet):  # type: ignore[misc]
    json = OrjsonCodec
    data: Any

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        return False

    def decode(self, encoded_packet: str | bytes) -> int:
        try:
            attachments: int = super().decode(encoded_packet) or 0
        except ValueError as exc:  # not JSON (orjson's and our errors are ValueErrors)
            if self.packet_type == packet.CONNECT:
                # Unreadable auth: connect without it, to be refused (or not) as usual.
                self.data = None
                return 0
            if self.packet_type not in (packet.EVENT, packet.BINARY_EVENT):
                raise
            return self._undecodable(f"not JSON ({exc})")
        if self.packet_type == packet.EVENT and not _is_event(self.data):
            return self._undecodable("an event is a JSON array that starts with its name")
        return attachments

    def _undecodable(self, reason: str) -> int:
        # Without an ack id nobody waits for an answer, and the refusal is never sent.
        self.packet_type = packet.EVENT
        self.data = [UNDECODABLE, reason]
        return 0


def _is_event(data: Any) -> bool:
    return isinstance(data, list) and bool(data) and isinstance(data[0], str)


def encoded_size(value: Any) -> int:
    """The size of ``value`` as JSON on the wire; anything JSON cannot hold reads as
    ``default`` text, as the payload checks expect."""
    return len(orjson.dumps(value, default=str, option=_OPTIONS))
