"""Webhook delivery per endpoint, against real local HTTP receivers: a receiver that never
answers does not delay another endpoint, retries come at their due times (not at the poll
tick), every post carries the Standard Webhooks headers that the ``standardwebhooks`` package
verifies, "send test event" reports its answer, and a secret rotation signs with both secrets
for its overlap window."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select, update
from standardwebhooks import Webhook, WebhookVerificationError

from livedesk.integrations.delivery import DeliveryJob
from livedesk.integrations.endpoints import new_secret
from livedesk.kit.clock import as_utc, utcnow
from livedesk.kit.db import Database
from livedesk.models import Role
from livedesk.models.integrations import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from livedesk.outbox import webhooks
from livedesk.settings import Settings
from tests.conftest import login, wait_until


@dataclass
class Receiver:
    """A real HTTP server: records arrival times, headers and bodies, answers the queued
    statuses (200 after them) or, when ``hang``, never answers."""

    url: str = ""
    hang: bool = False
    arrivals: list[float] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def receivers() -> AsyncIterator[Any]:
    servers: list[tuple[TestServer, Receiver]] = []

    async def make(hang: bool = False) -> Receiver:
        rec = Receiver(hang=hang)

        async def hook(request: web.Request) -> web.Response:
            rec.arrivals.append(time.monotonic())
            rec.received.append((dict(request.headers), await request.read()))
            if rec.hang:
                await rec.release.wait()
            status = rec.statuses.pop(0) if rec.statuses else 200
            return web.Response(status=status)

        app = web.Application()
        app.router.add_post("/hook", hook)
        server = TestServer(app)
        await server.start_server()
        rec.url = str(server.make_url("/hook"))
        servers.append((server, rec))
        return rec

    yield make
    for server, rec in servers:
        rec.release.set()
        await server.close()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_poll_seconds": 0.05,
            # Far longer than any wait below: a post to the dead receiver stays open the whole test.
            "webhook_timeout_seconds": 120.0,
            "webhook_endpoint_concurrency": 2,
            "webhook_backoff_seconds": 0.3,
            "webhook_max_attempts": 5,
            "webhook_allow_networks": "127.0.0.0/8",
        }
    )


async def add_endpoint(db: Database, url: str, types: list[str], secret: str | None = None) -> uuid.UUID:
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(), url=url, secret=secret or new_secret(), event_types=types, active=True
    )
    async with db.transaction() as session:
        session.add(endpoint)
    return endpoint.id


async def latencies(db: Database, healthy: Receiver, event_type: str, n: int) -> list[float]:
    """Queue ``n`` events one after the other, each once the previous one arrived; how long
    each took from its commit to its arrival at ``healthy``."""
    took: list[float] = []
    for i in range(n):
        before = len(healthy.arrivals)
        async with db.transaction() as session:
            await webhooks.enqueue(session, event_type, {"n": i})
        committed = time.monotonic()

        async def arrived(before: int = before) -> bool:
            return len(healthy.arrivals) > before

        # Far below the dead receiver's timeout: a healthy endpoint stuck behind it fails here.
        await wait_until(arrived, within=20, every=0.01)
        took.append(healthy.arrivals[before] - committed)
    return took


async def test_a_dead_endpoint_does_not_delay_a_healthy_one(
    db: Database, settings: Settings, receivers: Any
) -> None:
    healthy = await receivers()
    dead = await receivers(hang=True)
    await add_endpoint(db, healthy.url, [])
    job = DeliveryJob(db, settings)
    await job.start()
    try:
        baseline = await latencies(db, healthy, webhooks.BOOKING_CREATED, 8)
        # Now every event goes to a receiver that never answers, too.
        await add_endpoint(db, dead.url, [])
        beside_dead = await latencies(db, healthy, webhooks.BOOKING_CREATED, 8)
        # The dead one got its share of posts, each still open (never answered).
        assert len(dead.arrivals) == settings.webhook_endpoint_concurrency

        async def healthy_recorded() -> bool:
            async with db.read() as session:
                rows = (await session.scalars(select(WebhookDelivery))).all()
            return sum(r.status == DeliveryStatus.SUCCEEDED for r in rows) == 16

        # The healthy endpoint's rows are all recorded delivered; the dead one's backlog waits.
        await wait_until(healthy_recorded, within=20)
    finally:
        await job.stop()
    base_p50 = statistics.median(baseline)
    dead_p50 = statistics.median(beside_dead)
    # Relative to the same run's baseline; the slack absorbs a loaded machine, and the
    # dead receiver's 120 s timeout is what a shared pass would have waited.
    assert dead_p50 <= 3 * base_p50 + 0.5, (baseline, beside_dead)
    assert max(beside_dead) < 10, beside_dead


async def test_retries_come_at_their_due_times(db: Database, settings: Settings, receivers: Any) -> None:
    # A coarse poll: retries kept to the tick would come about 5 s apart.
    slow_tick = settings.model_copy(update={"webhook_poll_seconds": 5.0})
    flaky = await receivers()
    flaky.statuses = [500, 502, 503]
    await add_endpoint(db, flaky.url, [])
    job = DeliveryJob(db, slow_tick)
    await job.start()
    try:
        async with db.transaction() as session:
            await webhooks.enqueue(session, webhooks.PAYMENT_SUCCEEDED, {"id": "p1"})
        job.kick()

        async def delivered() -> bool:
            async with db.read() as session:
                row = (await session.scalars(select(WebhookDelivery))).one()
            return row.status == DeliveryStatus.SUCCEEDED

        await wait_until(delivered, within=30, every=0.02)
    finally:
        await job.stop()
    gaps = [b - a for a, b in zip(flaky.arrivals, flaky.arrivals[1:], strict=False)]
    schedule = [0.3, 0.6, 1.2]
    for gap, due in zip(gaps, schedule, strict=True):
        # Never early; late by far less than the 5 s tick.
        assert due - 0.02 <= gap < due + 2.0, (gaps, schedule)
    async with db.read() as session:
        log = (await session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.at))).all()
        [row] = (await session.scalars(select(WebhookDelivery))).all()
    assert [a.status_code for a in log] == [500, 502, 503, 200]
    assert row.status == DeliveryStatus.SUCCEEDED
    # Each try started no sooner than the one before ended plus its backoff.
    for before, after, due in zip(log[:-1], log[1:], schedule, strict=True):
        assert as_utc(after.at) - as_utc(before.at) >= timedelta(seconds=due)


def standard_verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


async def test_standard_webhooks_headers_verify_with_the_standard_library(
    db: Database, settings: Settings, receivers: Any
) -> None:
    rec = await receivers()
    legacy = "whsec_test_" + "x" * 20  # the URL-safe form secrets had before
    await add_endpoint(db, rec.url, [], secret=new_secret())
    await add_endpoint(db, rec.url, [], secret=legacy)
    async with db.transaction() as session:
        await webhooks.enqueue(session, webhooks.RECORDING_READY, {"recording_id": "r"})
    job = DeliveryJob(db, settings)
    try:
        await job.run_once()
        await job.settle()
    finally:
        await job.stop()
    async with db.read() as session:
        secrets = [e.secret for e in (await session.scalars(select(WebhookEndpoint))).all()]
    assert legacy in secrets
    assert len(rec.received) == 2
    verified = 0
    for headers, body in rec.received:
        assert headers[webhooks.STD_ID_HEADER] == headers[webhooks.EVENT_ID_HEADER]
        assert headers[webhooks.STD_SIGNATURE_HEADER].startswith("v1,")
        ok = [s for s in secrets if standard_verify(s, headers, body)]
        assert len(ok) == 1
        assert webhooks.verify(ok[0], headers[webhooks.SIGNATURE_HEADER], body)
        verified += 1
        # A changed body or a changed id fails.
        assert not standard_verify(ok[0], headers, body + b" ")
        assert not standard_verify(ok[0], {**headers, webhooks.STD_ID_HEADER: "other"}, body)
    assert verified == 2


async def send_test(client: Any, headers: dict[str, str], endpoint_id: str) -> dict[str, Any]:
    sent = await client.post(f"/api/v1/webhooks/endpoints/{endpoint_id}/test", headers=headers)
    assert sent.status == 201, await sent.text()
    delivery = await sent.json()
    assert delivery["event_type"] == "webhook.test"

    async def settled() -> Any:
        answer = await (await client.get(f"/api/v1/webhooks/deliveries/{delivery['id']}")).json()
        return answer if answer["status"] != "pending" else None

    result: dict[str, Any] = await wait_until(settled, within=20)
    return result


async def test_send_test_event_and_rotate_with_an_overlap(
    client: Any, make_staff: Any, db: Database, receivers: Any
) -> None:
    rec = await receivers()
    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    created = await client.post("/api/v1/webhooks/endpoints", json={"url": rec.url}, headers=headers)
    assert created.status == 201
    endpoint = await created.json()
    first = endpoint["secret"]
    result = await send_test(client, headers, endpoint["id"])
    assert result["status"] == "succeeded"
    assert [a["status_code"] for a in result["log"]] == [200]
    h, body = rec.received[-1]
    assert standard_verify(first, h, body)

    # Rotation with an overlap: both secrets sign, in both schemes.
    rotated = await client.post(
        f"/api/v1/webhooks/endpoints/{endpoint['id']}/rotate-secret",
        json={"overlap_hours": 1},
        headers=headers,
    )
    assert rotated.status == 200
    assert rotated.headers["Cache-Control"] == "no-store"
    second = (await rotated.json())["secret"]
    assert second != first
    assert (await rotated.json())["previous_secret_until"] is not None
    assert (await send_test(client, headers, endpoint["id"]))["status"] == "succeeded"
    h, body = rec.received[-1]
    assert len(h[webhooks.STD_SIGNATURE_HEADER].split(" ")) == 2
    assert standard_verify(first, h, body)
    assert standard_verify(second, h, body)
    assert webhooks.verify(first, h[webhooks.SIGNATURE_HEADER], body)
    assert webhooks.verify(second, h[webhooks.SIGNATURE_HEADER], body)

    # The window over: the old secret no longer signs.
    async with db.transaction() as session:
        await session.execute(
            update(WebhookEndpoint).values(previous_secret_until=utcnow() - timedelta(seconds=1))
        )
    assert (await send_test(client, headers, endpoint["id"]))["status"] == "succeeded"
    h, body = rec.received[-1]
    assert not standard_verify(first, h, body)
    assert standard_verify(second, h, body)
    assert not webhooks.verify(first, h[webhooks.SIGNATURE_HEADER], body)

    # No overlap asked: the old secret stops at once.
    third = await client.post(
        f"/api/v1/webhooks/endpoints/{endpoint['id']}/rotate-secret",
        json={"overlap_hours": 0},
        headers=headers,
    )
    new = (await third.json())["secret"]
    assert (await send_test(client, headers, endpoint["id"]))["status"] == "succeeded"
    h, body = rec.received[-1]
    assert standard_verify(new, h, body)
    assert not standard_verify(second, h, body)

    # A test event to a receiver that fails is tried once and reported failed, with the reason.
    rec.statuses = [500]
    failed = await send_test(client, headers, endpoint["id"])
    assert failed["status"] == "failed"
    assert failed["attempts"] == 1
    assert "HTTP 500" in failed["last_error"]

    missing = await client.post(f"/api/v1/webhooks/endpoints/{uuid.uuid4()}/test", headers=headers)
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "endpoint_not_found"
    bad = await client.post(
        f"/api/v1/webhooks/endpoints/{endpoint['id']}/rotate-secret",
        json={"overlap_hours": -1},
        headers=headers,
    )
    assert bad.status == 422


async def test_two_running_jobs_post_each_delivery_once(
    db: Database, settings: Settings, receivers: Any
) -> None:
    # Two database handles, two running jobs (with their wake-ups): two processes' worth.
    recs = [await receivers(), await receivers()]
    for rec in recs:
        rec.statuses = [500] * 5  # some retries, claimed by whichever job comes first
        await add_endpoint(db, rec.url, [])
    async with db.transaction() as session:
        for n in range(20):
            await webhooks.enqueue(session, webhooks.BOOKING_CHANGED, {"n": n})
    other = Database(db.url)
    jobs = [DeliveryJob(db, settings), DeliveryJob(other, settings)]
    try:
        for job in jobs:
            await job.start()

        async def all_done() -> bool:
            async with db.read() as session:
                rows = (await session.scalars(select(WebhookDelivery))).all()
            return all(r.status == DeliveryStatus.SUCCEEDED for r in rows)

        await wait_until(all_done, within=60)
    finally:
        for job in jobs:
            await job.stop()
        await other.dispose()
    for rec in recs:
        numbers = sorted(json.loads(body)["data"]["n"] for _, body in rec.received)
        # Every event arrived, the failed tries once more each, nothing twice beyond that.
        assert sorted(set(numbers)) == list(range(20))
        assert len(rec.received) == 20 + 5
    async with db.read() as session:
        attempts = (await session.scalars(select(WebhookAttempt))).all()
    assert len(attempts) == 50
