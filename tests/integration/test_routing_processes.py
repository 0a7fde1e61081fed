"""Two real ``livedesk serve`` processes on one PostgreSQL and one Redis: shoppers joining on
both at once, advisors on both, each process deciding its own joins with row locks. No
consultation is offered twice and no advisor holds two offers (consultations/dispatch.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from livedesk.kit.db import Database
from livedesk.models import Consultation, ConsultationStatus, Role
from tests.conftest import SocketClient
from tests.integration.test_multiprocess import (  # noqa: F401 - fixtures
    Cluster,
    cluster,
    shopper_socket,
    staff_socket,
    wait_ready,
    wait_until,
)

pytestmark = pytest.mark.postgres

ADVISORS = 4
SHOPPERS = 12


async def test_joins_on_two_processes_at_once_never_double_offer(
    cluster: Cluster,  # noqa: F811 - the fixture imported above
    make_staff: Any,
    db: Database,
) -> None:
    # Every shopper comes from 127.0.0.1: the per-address caps are not under test here.
    cluster.env.update(
        {
            "LIVEDESK_QUEUE_WAITING_PER_ADDRESS": "0",
            "LIVEDESK_QUEUE_WAITING_PER_NETWORK": "0",
            "LIVEDESK_QUEUE_ADDRESS_RATE_LIMIT": "1000/minute",
            "LIVEDESK_QUEUE_NETWORK_RATE_LIMIT": "1000/minute",
            "LIVEDESK_SHOPPER_CONNECT_RATE_LIMIT": "1000/minute",
        }
    )
    a, b = cluster.start("a"), cluster.start("b")
    await asyncio.gather(wait_ready(a), wait_ready(b))
    servers = (a, b)
    sockets: list[SocketClient] = []
    try:
        consoles = []
        for n in range(ADVISORS):
            console = await staff_socket(servers[n % 2], await make_staff(Role.ADVISOR))
            sockets.append(console)
            await console.wait_for("presence.changed", lambda p: p["status"] == "available", within=15)
            consoles.append(console)
        shoppers = []
        async with aiohttp.ClientSession() as http:
            for n in range(SHOPPERS):
                response = await http.post(servers[n % 2].url + "/api/v1/visitors", json={})
                assert response.status == 201, await response.text()
                shopper = await shopper_socket(servers[n % 2], (await response.json())["token"])
                sockets.append(shopper)
                shoppers.append(shopper)
        # All at once, half through each process.
        joined = await asyncio.gather(*(s.ok("queue.join", {"kind": "video"}) for s in shoppers))
        ids = {j["id"] for j in joined}

        async def offered() -> int:
            async with db.read() as session:
                count = await session.scalar(
                    select(func.count())
                    .select_from(Consultation)
                    .where(Consultation.status == ConsultationStatus.OFFERED)
                )
            return int(count or 0)

        async def all_taken() -> bool:
            return await offered() == ADVISORS

        # Four advisors free, twelve joined: four offers, one each (a missed decision would
        # come with the sweep; none should be needed).
        await wait_until(all_taken, "every advisor offered one", within=30)
        for console in consoles:
            await console.wait_for("offer.new", within=15)
        async with db.read() as session:
            held = (
                await session.execute(
                    select(Consultation.offered_to_id, func.count())
                    .where(Consultation.status == ConsultationStatus.OFFERED)
                    .group_by(Consultation.offered_to_id)
                )
            ).all()
        assert len(held) == ADVISORS
        assert all(count == 1 for _, count in held)
        offers = [o["id"] for console in consoles for o in console.received("offer.new")]
        assert len(offers) == ADVISORS, offers
        assert len(set(offers)) == ADVISORS
        assert set(offers) <= ids
        assert await offered() == ADVISORS
    finally:
        for sock in sockets:
            await sock.close()
