"""The Engine.IO websocket loops (realtime/engine.py) against the running app: websocket
clients are served by them, long-polling clients still upgrade, and a socket the server ends
(a missed pong, a disconnect) releases its websocket at once."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web

from livedesk.realtime.emit import SIO
from livedesk.realtime.engine import LeanSocket
from livedesk.settings import Settings
from tests.conftest import wait_until


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A quick heartbeat, so a silent client is found within seconds.
    return settings.model_copy(update={"socket_ping_interval_seconds": 1, "socket_ping_timeout_seconds": 1})


class RawShopper:
    """A websocket that speaks just enough Engine.IO/Socket.IO to connect, and then answers
    nothing (no pongs) unless asked."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[str] = []

    @classmethod
    async def connect(cls, http: aiohttp.ClientSession, base: str, token: str) -> RawShopper:
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        ws = await http.ws_connect(url, autoping=False)
        opened = await ws.receive_str(timeout=5)
        assert opened.startswith("0"), opened
        await ws.send_str("40/shopper," + json.dumps({"token": token}))
        sock = cls(ws)
        reply = await sock.next_frame()
        assert reply.startswith("40/shopper,"), reply
        return sock

    async def next_frame(self, within: float = 5.0) -> str:
        msg = await self.ws.receive(timeout=within)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"websocket ended: {msg.type.name}")
        self.frames.append(msg.data)
        return str(msg.data)

    async def read_until_closed(self, within: float) -> None:
        """Read (never answering) until the server closes the websocket."""
        while True:
            try:
                await self.next_frame(within)
            except ConnectionError:
                return


def _engine_sockets(app: web.Application) -> dict[str, Any]:
    sockets: dict[str, Any] = app[SIO].eio.sockets
    return sockets


async def test_websocket_clients_are_served_by_the_lean_loops(app: web.Application, live: Any) -> None:
    shopper = await live.shopper()
    joined = await shopper.ok("queue.join", {"kind": "chat"})
    assert joined["status"] == "queued"
    sockets = list(_engine_sockets(app).values())
    assert sockets
    assert all(type(s) is LeanSocket and s._lean for s in sockets)
    await shopper.close()
    # The client's own close releases the server's socket (and runs its disconnect handlers).
    await wait_until(lambda: _none_left(app), within=5)


async def _none_left(app: web.Application) -> bool:
    return not any(not s.closed for s in _engine_sockets(app).values())


async def test_a_long_polling_client_still_upgrades_and_works(app: web.Application, live: Any) -> None:
    token = (await live.visitor())["token"]
    async with aiohttp.ClientSession() as http:
        client = socketio.AsyncClient(reconnection=False, http_session=http)
        await client.connect(
            live.url, namespaces=["/shopper"], auth={"token": token}, transports=["polling", "websocket"]
        )
        try:

            async def upgraded() -> bool:
                return bool(client.eio.current_transport == "websocket")

            await wait_until(upgraded, within=5)
            ack = await client.call("queue.join", {"kind": "chat"}, namespace="/shopper", timeout=5)
            assert ack["ok"] is True, ack
            (socket,) = [s for s in _engine_sockets(app).values() if not s.closed]
            assert socket.upgraded
            assert socket._lean  # after the upgrade handshake, the same loops (and bounds)
        finally:
            await client.disconnect()
    await wait_until(lambda: _none_left(app), within=5)


async def test_a_silent_client_is_closed_by_the_heartbeat(app: web.Application, live: Any) -> None:
    token = (await live.visitor())["token"]
    async with aiohttp.ClientSession() as http:
        shopper = await RawShopper.connect(http, live.url, token)
        (socket,) = list(_engine_sockets(app).values())
        manager = app[SIO].manager
        sid = manager.sid_from_eio_sid(socket.sid, "/shopper")
        assert manager.is_connected(sid, "/shopper")
        # It never answers the server's ping: the server closes the socket within about
        # interval + timeout (+ one pass of the service task), and the websocket with it.
        await shopper.read_until_closed(within=10)
        assert "2" in shopper.frames  # it was pinged
        assert shopper.ws.closed
        assert socket.closed
        assert not manager.is_connected(sid, "/shopper")  # its disconnect handlers ran
        await wait_until(lambda: _none_left(app), within=5)


async def test_a_socket_the_server_disconnects_releases_its_websocket(
    app: web.Application, live: Any
) -> None:
    token = (await live.visitor())["token"]
    async with aiohttp.ClientSession() as http:
        shopper = await RawShopper.connect(http, live.url, token)
        (socket,) = list(_engine_sockets(app).values())
        await app[SIO].eio.disconnect(socket.sid)
        # Well before any heartbeat could: the CLOSE packet, then the websocket's close.
        await shopper.read_until_closed(within=0.9)
        assert shopper.frames[-1] == "1"
        assert shopper.ws.closed
