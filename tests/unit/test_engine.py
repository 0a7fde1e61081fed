"""The hook points realtime/engine.py relies on. It overrides a private method of
python-engineio and swaps the class of the sockets python-engineio makes; if an upgrade moves
either, this fails loudly instead of the server silently going back to the library's loops."""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version

import engineio
import socketio
from engineio import async_server, async_socket, packet
from engineio.async_drivers import aiohttp as aiohttp_driver

from livedesk.realtime.engine import LeanSocket, serve_lean
from livedesk.realtime.server import LivedeskSocketServer


def test_engineio_is_the_pinned_version() -> None:
    assert version("python-engineio") == "4.15.1", (
        "python-engineio is no longer 4.15.1: re-check livedesk/realtime/engine.py's hook points "
        "before pinning it"
    )


def test_engineio_makes_its_sockets_where_the_swap_expects() -> None:
    # The socket is made from the module attribute, then the connect event runs before its
    # transport starts: that event is where LivedeskSocketServer swaps the class.
    source = inspect.getsource(async_server.AsyncServer._handle_connect)
    made = source.index("async_socket.AsyncSocket(self, sid)")
    connect_event = source.index("self._trigger_event('connect', sid, environ")
    transport_starts = source.index("s.handle_get_request(environ)")
    assert made < connect_event < transport_starts
    assert socketio.AsyncServer._engineio_server_class(None) is engineio.AsyncServer
    assert LivedeskSocketServer._handle_eio_connect is not socketio.AsyncServer._handle_eio_connect


def test_the_overridden_methods_still_exist_with_their_signatures() -> None:
    base = async_socket.AsyncSocket
    assert list(inspect.signature(base._websocket_handler).parameters) == ["self", "ws"]
    assert list(inspect.signature(base.close).parameters) == ["self", "wait", "abort", "reason"]
    for name in ("wait", "send", "close"):
        assert inspect.iscoroutinefunction(getattr(aiohttp_driver.WebSocket, name))
    # The ping task and the timeout check that now close a silent client.
    assert "check_ping_timeout" in inspect.getsource(async_server.AsyncServer._service_task)


def test_only_the_library_socket_class_is_swapped() -> None:
    class Other(async_socket.AsyncSocket):  # type: ignore[misc]
        pass

    plain = object.__new__(async_socket.AsyncSocket)
    serve_lean(plain)
    assert type(plain) is LeanSocket
    other = object.__new__(Other)
    serve_lean(other)
    assert type(other) is Other
    serve_lean(None)  # a socket already gone: nothing to do


class _BrokenWebSocket:
    """The engine.io driver's websocket, as it is once the peer has gone: every send fails."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closes = 0

    async def send(self, message: str) -> None:
        self.sent.append(message)
        raise ConnectionResetError("gone")

    async def close(self) -> None:
        self.closes += 1


async def test_a_writer_whose_peer_is_gone_keeps_emptying_its_queue() -> None:
    """A server-side close waits for the socket's queue to empty (``queue.join``): after the
    first failed send the writer closes the websocket (waking the reader) and drops the rest."""
    socket = object.__new__(LeanSocket)
    socket.queue = asyncio.Queue()
    ws = _BrokenWebSocket()
    writer = asyncio.create_task(socket._write_frames(ws))
    for n in range(3):
        socket.queue.put_nowait(packet.Packet(packet.MESSAGE, f"m{n}"))
    await asyncio.wait_for(socket.queue.join(), 5)
    assert ws.sent == ["4m0"]  # one attempt; the others were dropped
    assert ws.closes >= 1
    socket.queue.put_nowait(None)
    await asyncio.wait_for(writer, 5)
