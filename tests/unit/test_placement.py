"""Where a call's legs live (calls/placement.py), when Redis cannot be reached: the process
that got the offer answers it rather than failing the call's media."""

from __future__ import annotations

import socket
import uuid

from aiohttp import web
from redis import asyncio as aioredis

from livedesk.calls.placement import Placement


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


async def test_an_unreachable_redis_leaves_the_call_here() -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    placement = Placement(web.Application(), "this-process", url, "test")
    placement._redis = aioredis.Redis.from_url(url)
    try:
        call = uuid.uuid4()
        assert await placement.holder(call, claim=True) == "this-process"
        assert await placement.holder(call, claim=False) == "this-process"

        async def here(args: dict[str, object]) -> dict[str, object]:
            return {"answered": args["n"]}

        placement.handle("op", here)
        assert await placement.run(call, "op", {"n": 1}) == {"answered": 1}
    finally:
        await placement._redis.aclose()


async def test_without_redis_one_process_holds_every_call() -> None:
    placement = Placement(web.Application(), "only", None, "test")
    assert not placement.routed
    assert await placement.holder(uuid.uuid4(), claim=False) == "only"
