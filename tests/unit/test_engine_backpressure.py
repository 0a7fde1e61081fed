"""The python-engineio hook points the bounded queues and the long-polling guards rely on
(realtime/engine.py, realtime/engine_server.py). If an upgrade moves one, this fails loudly
instead of the bounds silently no longer applying."""

from __future__ import annotations

import inspect

import socketio
from engineio import async_server, async_socket, packet
from engineio.async_drivers import aiohttp as aiohttp_driver

from livedesk.realtime.engine import LeanSocket, packet_size, serve_lean
from livedesk.realtime.engine_server import LivedeskEngineServer
from livedesk.realtime.server import LivedeskSocketServer


def test_the_socket_io_server_builds_our_engine_server() -> None:
    assert "self.eio = self._engineio_server_class()(" in inspect.getsource(
        socketio.base_server.BaseServer.__init__
    )
    server = LivedeskSocketServer(async_mode="aiohttp")
    assert type(server.eio) is LivedeskEngineServer


def test_every_packet_goes_through_the_socket_send_we_bound() -> None:
    # Room delivery and acks reach the socket through send_packet → socket.send.
    assert "await socket.send(pkt)" in inspect.getsource(async_server.AsyncServer.send_packet)
    # Only the OPEN packet is queued before the class swap (serve_lean counts it).
    connect = inspect.getsource(async_server.AsyncServer._handle_connect)
    assert connect.index("await s.send(pkt)") < connect.index("self._trigger_event('connect'")
    assert connect.count("s.send(") == 1
    # The library's own queue users that bypass send: the poll, the upgrade NOOP, the None marks.
    assert "self.queue.get()" in inspect.getsource(async_socket.AsyncSocket.poll)
    for name in ("send", "poll", "handle_post_request", "close"):
        assert getattr(LeanSocket, name) is not getattr(async_socket.AsyncSocket, name)
    assert list(inspect.signature(async_socket.AsyncSocket.handle_post_request).parameters) == [
        "self",
        "environ",
    ]


def test_the_driver_hands_the_request_to_the_websocket_handler() -> None:
    # LeanSocket aborts a stalled websocket through environ["aiohttp.request"].transport.
    call = inspect.getsource(aiohttp_driver.WebSocket.__call__)
    assert call.index("self.environ = environ") < call.index("await self.handler(self)")
    assert "'aiohttp.request': request" in inspect.getsource(aiohttp_driver.translate_request)
    assert "'wsgi.input': request.content" in inspect.getsource(aiohttp_driver.translate_request)


def test_the_library_still_answers_posts_and_polls_where_we_wrap_them() -> None:
    handle = inspect.getsource(async_server.AsyncServer.handle_request)
    assert "await socket.handle_post_request(environ)" in handle
    assert "await socket.handle_get_request(" in handle
    # A cancelled poll is the library's "no packets": it ends the session, not the process.
    poll = inspect.getsource(async_socket.AsyncSocket.poll)
    assert "except (asyncio.TimeoutError, asyncio.CancelledError):" in poll
    assert "check_ping_timeout" in inspect.getsource(async_server.AsyncServer._service_task)


def test_packet_size_counts_text_as_python_holds_it() -> None:
    ascii_text = packet.Packet(packet.MESSAGE, "x" * 1000)
    wide_text = packet.Packet(packet.MESSAGE, "あ" * 1000)
    assert 1000 < packet_size(ascii_text) < 1100
    assert 2000 < packet_size(wide_text) < 2100  # two bytes a character in Python
    assert packet_size(packet.Packet(packet.PING)) == 64


def test_serve_lean_counts_what_the_library_queued_first() -> None:
    import asyncio

    sock = object.__new__(async_socket.AsyncSocket)
    sock.queue = asyncio.Queue()
    sock.queue.put_nowait(packet.Packet(packet.OPEN, {"sid": "x"}))
    serve_lean(sock)
    assert type(sock) is LeanSocket
    assert sock._queued == 64
