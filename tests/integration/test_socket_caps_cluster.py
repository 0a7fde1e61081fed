"""Shopper socket caps hold across replicas (issue 18, abuse budgets).

The attack: a visitor token's cap is 3 open sockets; counted per process, two replicas let
one token hold 6. With Redis configured the count is the cluster's: the 4th socket is refused
on the other replica too. A replica that dies (SIGKILL) stops counting once its entries
expire, so its sockets do not use up the budget for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

import aiohttp
import pytest

from livedesk.realtime.socket_caps import TTL_SECONDS
from tests.conftest import SocketClient
from tests.integration.test_multiprocess import Cluster, shopper_socket, wait_ready
from tests.integration.test_multiprocess import cluster as cluster  # the fixture

CAP = 3


@pytest.fixture
def capped(cluster: Cluster) -> Cluster:
    cluster.env["LIVEDESK_SHOPPER_SOCKETS_PER_TOKEN"] = str(CAP)
    return cluster


async def _refusal(url: str, token: str) -> Any:
    sock = SocketClient("/shopper")
    with contextlib.suppress(Exception):
        await sock.connect(url, auth={"token": token})
    if sock.sio.connected:
        return sock
    await sock.http.close()
    return next((data for name, data in sock.events if name == "connect_error"), "refused")


async def test_the_socket_cap_per_token_holds_across_replicas_and_outlives_no_dead_replica(
    capped: Cluster,
) -> None:
    a, b = capped.start("a"), capped.start("b")
    await asyncio.gather(wait_ready(a), wait_ready(b))
    async with aiohttp.ClientSession() as http:
        response = await http.post(a.url + "/api/v1/visitors", json={})
        token = (await response.json())["token"]
    held: list[SocketClient] = []
    try:
        held += [await shopper_socket(a, token) for _ in range(CAP - 1)]
        held.append(await shopper_socket(b, token))
        # The cap is reached across the two: a 4th is refused on either replica.
        for server in (a, b):
            refused = await _refusal(server.url, token)
            assert not isinstance(refused, SocketClient), f"{server.name} admitted a 4th socket"
            assert refused["data"]["code"] == "too_many_sockets", refused
        # One closed on B frees a place (on A as well).
        await held.pop().close()
        extra = await _refusal(a.url, token)
        assert isinstance(extra, SocketClient), extra
        held.append(extra)
        # A dies holding all three: they stop counting once their entries expire.
        os.kill(a.proc.pid, signal.SIGKILL)
        await asyncio.to_thread(a.proc.wait, 10)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TTL_SECONDS + 15
        while True:
            again = await _refusal(b.url, token)
            if isinstance(again, SocketClient):
                held.append(again)
                break
            assert again["data"]["code"] == "too_many_sockets", again
            assert loop.time() < deadline, "a dead replica's sockets still count"
            await asyncio.sleep(0.5)
    finally:
        for sock in held:
            with contextlib.suppress(Exception):
                if sock.sio.connected:
                    await sock.close()
                else:
                    await sock.http.close()
