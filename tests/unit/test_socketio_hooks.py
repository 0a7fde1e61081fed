"""The python-socketio hook points livedesk relies on (issue 21, item 6).

realtime/fanout.py calls the server's private ``_send_eio_packet`` and leans on
``AsyncPubSubManager._handle_emit`` reaching the next manager in the MRO for its local
delivery; realtime/redis_fanout.py (issue 22, item 3) learns of every room membership change
from ``basic_enter_room``/``basic_leave_room``, replaces ``_publish`` and the listener
``_thread`` and hands received messages to the library's ``_handle_*`` methods;
realtime/server.py overrides the private ``_engineio_server_class`` and
``_handle_eio_connect``; realtime/wire.py subclasses the packet class and overrides ``decode``
and ``data_is_binary``. python-socketio is pinned exactly in pyproject.toml; if an upgrade moves
any of these, this fails loudly instead of the server silently losing its fan-out, its hostile
client guards or its refusal of undecodable packets.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import socketio
from socketio import async_pubsub_manager, async_server, base_manager, packet

from livedesk.realtime.engine_server import LivedeskEngineServer
from livedesk.realtime.fanout import LocalFanout
from livedesk.realtime.redis_fanout import RedisFanout
from livedesk.realtime.server import LivedeskSocketServer
from livedesk.realtime.wire import WirePacket

PINNED = "5.18.1"


def _params(fn: object) -> list[str]:
    return list(inspect.signature(fn).parameters)  # type: ignore[arg-type]


def test_socketio_is_the_pinned_version() -> None:
    assert version("python-socketio") == PINNED, (
        f"python-socketio is no longer {PINNED}: re-check realtime/fanout.py, server.py and wire.py "
        "against its private methods before changing the pin"
    )


def test_the_raw_engineio_send_fanout_calls_still_exists() -> None:
    send = async_server.AsyncServer._send_eio_packet
    assert inspect.iscoroutinefunction(send)
    assert _params(send) == ["self", "eio_sid", "eio_pkt"]
    # It must still be the raw path: hand the Engine.IO packet over without re-encoding.
    assert "self.eio.send_packet(eio_sid, eio_pkt)" in inspect.getsource(send)
    assert _params(base_manager.BaseManager.get_participants) == ["self", "namespace", "room"]


def test_redis_delivery_still_reaches_the_local_fanout() -> None:
    # The pub/sub manager hands a received message to super().emit: with RedisFanout's MRO
    # that is LocalFanout.emit, which is where the per-process delivery and the delivered-sequence
    # bookkeeping (chat redelivery) live.
    assert "await super().emit(" in inspect.getsource(async_pubsub_manager.AsyncPubSubManager._handle_emit)
    mro = RedisFanout.__mro__
    assert mro.index(async_pubsub_manager.AsyncPubSubManager) < mro.index(LocalFanout)
    assert mro.index(LocalFanout) < mro.index(socketio.AsyncManager)
    assert _params(socketio.AsyncManager.emit)[:5] == ["self", "event", "data", "namespace", "room"]


def test_the_server_overrides_still_override_something() -> None:
    base = socketio.AsyncServer
    assert _params(base._handle_eio_connect) == ["self", "eio_sid", "environ"]
    assert LivedeskSocketServer._handle_eio_connect is not base._handle_eio_connect
    assert base._engineio_server_class(None) is not LivedeskEngineServer
    # The base server builds its Engine.IO server from that method and wires the connect hook.
    init = inspect.getsource(socketio.base_server.BaseServer.__init__)
    assert "self._engineio_server_class()(" in init
    assert "self.eio.on('connect', self._handle_eio_connect)" in init


def test_the_packet_overrides_still_override_something() -> None:
    assert _params(packet.Packet.decode) == ["self", "encoded_packet"]
    assert isinstance(inspect.getattr_static(packet.Packet, "data_is_binary"), classmethod)
    assert WirePacket.decode is not packet.Packet.decode
    # The server makes its packets (fanout.py's too) from the serializer class it is given.
    init = inspect.getsource(socketio.base_server.BaseServer.__init__)
    assert "self.packet_class = serializer" in init
    assert "self.packet_class.json = json" in init


def test_every_room_membership_change_goes_through_the_two_basic_methods() -> None:
    # RedisFanout subscribes a room's channel when its first local socket enters and
    # unsubscribes when the last leaves, from these two methods alone: if the library changed
    # rooms anywhere else, a process would stop hearing a room it has sockets in.
    base = base_manager.BaseManager
    assert _params(base.basic_enter_room) == ["self", "sid", "namespace", "room", "eio_sid"]
    assert _params(base.basic_leave_room) == ["self", "sid", "namespace", "room"]
    writes = [
        name
        for name, fn in inspect.getmembers(base, inspect.isfunction)
        if "self.rooms[namespace][room][sid] =" in inspect.getsource(fn)
        or "del self.rooms[namespace][room][sid]" in inspect.getsource(fn)
    ]
    assert sorted(writes) == ["basic_enter_room", "basic_leave_room"]
    assert inspect.getsource(base.pre_connect).count("self.basic_enter_room(") == 2
    assert "self.basic_leave_room(" in inspect.getsource(base.basic_disconnect)
    assert "self.basic_leave_room(" in inspect.getsource(base.basic_close_room)
    manager = socketio.AsyncManager
    assert "self.basic_enter_room(" in inspect.getsource(manager.enter_room)
    assert "self.basic_leave_room(" in inspect.getsource(manager.leave_room)
    assert "self.basic_disconnect(" in inspect.getsource(manager.disconnect)
    assert "self.basic_close_room(" in inspect.getsource(manager.close_room)
    assert RedisFanout.basic_enter_room is not base.basic_enter_room
    assert RedisFanout.basic_leave_room is not base.basic_leave_room


def test_the_pubsub_hooks_room_fanout_replaces_still_exist() -> None:
    pubsub = async_pubsub_manager.AsyncPubSubManager
    # initialize() starts the listener from _thread, which RedisFanout replaces.
    assert "self.server.start_background_task(self._thread)" in inspect.getsource(pubsub.initialize)
    assert RedisFanout._thread is not pubsub._thread
    # Every control message goes out through _publish (which RedisFanout routes by channel).
    assert _params(pubsub._publish) == ["self", "data"]
    for name in ("disconnect", "can_disconnect", "enter_room", "leave_room", "close_room", "emit"):
        assert "await self._publish(" in inspect.getsource(getattr(pubsub, name)), name
    assert "'method': 'callback', 'host_id': host_id" in inspect.getsource(pubsub._return_callback)
    # The handlers RedisFanout hands received messages to, with the message dict only.
    for name in ("emit", "callback", "disconnect", "enter_room", "leave_room", "close_room"):
        assert _params(getattr(pubsub, f"_handle_{name}")) == ["self", "message"], name
    emit = inspect.getsource(pubsub.emit)
    for key in ("'method': 'emit'", "'event': event", "'data': data", "'room': room", "'skip_sid'"):
        assert key in emit, key
