"""Outgoing webhooks against a real local HTTP receiver: written in the caller's transaction
(nothing on rollback), signed, retried with backoff, logged per attempt, failed after the last
try, and posted once even with two delivery jobs racing."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from livedesk.integrations.delivery import DeliveryJob, backoff
from livedesk.kit.db import Database
from livedesk.models import Role
from livedesk.models.integrations import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from livedesk.outbox import webhooks
from livedesk.settings import Settings
from tests.conftest import wait_until

SECRET = "whsec_test_" + "x" * 20


@dataclass
class Receiver:
    """A real HTTP server that records what it is sent and answers the queued statuses."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def hook(request: web.Request) -> web.Response:
        rec.received.append((dict(request.headers), await request.read()))
        status = rec.statuses.pop(0) if rec.statuses else 200
        return web.Response(status=status, text="ok" if status < 300 else "broken")

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app)
    await server.start_server()
    rec.url = str(server.make_url("/hook"))
    yield rec
    await server.close()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_poll_seconds": 0.02,
            "webhook_backoff_seconds": 0.05,
            "webhook_max_attempts": 3,
            "presence_grace_seconds": 0.0,
            # The receiver listens on loopback, which webhooks may reach only when allowed.
            "webhook_allow_networks": "127.0.0.0/8",
        }
    )


async def add_endpoint(
    db: Database, url: str, types: list[str] | None = None, active: bool = True
) -> uuid.UUID:
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(), url=url, secret=SECRET, event_types=types or [], active=active, description=""
    )
    async with db.transaction() as session:
        session.add(endpoint)
    return endpoint.id


async def deliveries(db: Database) -> list[WebhookDelivery]:
    async with db.read() as session:
        return list(
            (await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at))).all()
        )


async def attempts(db: Database) -> list[WebhookAttempt]:
    async with db.read() as session:
        return list((await session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.at))).all())


async def drain(job: DeliveryJob, db: Database, within: float = 5.0) -> None:
    """Run the job until nothing is pending any more (a deadline, not a sleep)."""

    async def settled() -> bool:
        await job.run_once()
        await job.settle()
        return all(d.status != DeliveryStatus.PENDING for d in await deliveries(db))

    await wait_until(settled, within=within, every=0.02)


async def test_enqueue_delivers_signed_once(db: Database, settings: Settings, receiver: Receiver) -> None:
    endpoint_id = await add_endpoint(db, receiver.url, [webhooks.BOOKING_CREATED])
    booking_id = uuid.uuid4()
    async with db.transaction() as session:
        await webhooks.enqueue(session, webhooks.BOOKING_CREATED, {"booking_id": booking_id, "n": 1})
    job = DeliveryJob(db, settings)
    try:
        await drain(job, db)
        await job.run_once()
        await job.settle()
    finally:
        await job.stop()
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert webhooks.verify(SECRET, headers[webhooks.SIGNATURE_HEADER], body)
    assert not webhooks.verify("another secret", headers[webhooks.SIGNATURE_HEADER], body)
    assert not webhooks.verify(SECRET, headers[webhooks.SIGNATURE_HEADER], body + b" ")
    event = json.loads(body)
    assert event["type"] == "booking.created"
    assert event["data"] == {"booking_id": str(booking_id), "n": 1}
    assert headers[webhooks.EVENT_ID_HEADER] == event["id"]
    assert headers[webhooks.EVENT_TYPE_HEADER] == "booking.created"
    [row] = await deliveries(db)
    assert row.endpoint_id == endpoint_id
    assert row.status == DeliveryStatus.SUCCEEDED
    assert row.attempts == 1
    assert row.last_status_code == 200
    [attempt] = await attempts(db)
    assert attempt.status_code == 200
    assert attempt.error == ""


async def test_rollback_enqueues_nothing(db: Database, receiver: Receiver) -> None:
    await add_endpoint(db, receiver.url)

    class Boom(Exception):
        pass

    async def fails_after_enqueue() -> None:
        async with db.transaction() as session:
            await webhooks.enqueue(session, webhooks.PAYMENT_SUCCEEDED, {"amount": 100})
            raise Boom

    with pytest.raises(Boom):
        await fails_after_enqueue()
    assert await deliveries(db) == []


async def test_only_subscribed_active_endpoints(db: Database, receiver: Receiver) -> None:
    wanted = await add_endpoint(db, receiver.url, [webhooks.RECORDING_READY, webhooks.PAYMENT_REFUNDED])
    await add_endpoint(db, receiver.url, [webhooks.BOOKING_CHANGED])
    await add_endpoint(db, receiver.url, [], active=False)
    everything = await add_endpoint(db, receiver.url, [])
    async with db.transaction() as session:
        await webhooks.enqueue(session, webhooks.RECORDING_READY, {"recording_id": "r1"})
    rows = await deliveries(db)
    assert {r.endpoint_id for r in rows} == {wanted, everything}
    # One event, one id, whatever the number of endpoints.
    assert len({r.event_id for r in rows}) == 1


async def test_unknown_event_type_refused(db: Database) -> None:
    async with db.transaction() as session:
        with pytest.raises(ValueError, match="unknown webhook event type"):
            await webhooks.enqueue(session, "booking.exploded", {})
        with pytest.raises(TypeError, match="JSON-serialisable"):
            await webhooks.enqueue(session, webhooks.BOOKING_CREATED, {"x": object()})


async def test_retries_with_backoff_then_succeeds(
    db: Database, settings: Settings, receiver: Receiver
) -> None:
    await add_endpoint(db, receiver.url)
    receiver.statuses = [500, 503]
    async with db.transaction() as session:
        await webhooks.enqueue(session, webhooks.CONSULTATION_CLOSED, {"consultation_id": "c1"})
    job = DeliveryJob(db, settings)
    try:
        await job.run_once()
        await job.settle()
        [row] = await deliveries(db)
        assert row.status == DeliveryStatus.PENDING
        assert row.attempts == 1
        assert row.last_status_code == 500
        assert "HTTP 500" in row.last_error
        # Not retried before its backoff is over.
        assert row.next_attempt_at > row.created_at
        await drain(job, db)
    finally:
        await job.stop()
    [row] = await deliveries(db)
    assert row.status == DeliveryStatus.SUCCEEDED
    assert row.attempts == 3
    log = await attempts(db)
    assert [a.status_code for a in log] == [500, 503, 200]
    # The same event id on every try, so a receiver can de-duplicate.
    assert len({h[webhooks.EVENT_ID_HEADER] for h, _ in receiver.received}) == 1


async def test_gives_up_after_max_attempts(db: Database, settings: Settings) -> None:
    # Nothing listens on this port: connection refused each time.
    await add_endpoint(db, "http://127.0.0.1:9/none")
    async with db.transaction() as session:
        await webhooks.enqueue(session, webhooks.PAYMENT_REFUNDED, {"id": "p"})
    job = DeliveryJob(db, settings)
    try:
        await drain(job, db)
    finally:
        await job.stop()
    [row] = await deliveries(db)
    assert row.status == DeliveryStatus.FAILED
    assert row.attempts == 3
    assert row.last_status_code is None
    assert "Connect" in row.last_error
    assert len(await attempts(db)) == 3


def test_backoff_doubles_and_caps(settings: Settings) -> None:
    s = settings.model_copy(update={"webhook_backoff_seconds": 30.0})
    assert [backoff(s, n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(s, 40).total_seconds() == 6 * 3600


def test_old_signature_refused() -> None:
    body = b'{"a":1}'
    header = webhooks.sign(SECRET, body, int(time.time()) - 3600)
    assert not webhooks.verify(SECRET, header, body)
    assert webhooks.verify(SECRET, header, body, tolerance=7200)
    assert not webhooks.verify(SECRET, "garbage", body)


async def test_two_jobs_post_each_delivery_once(db: Database, settings: Settings, receiver: Receiver) -> None:
    await add_endpoint(db, receiver.url)
    async with db.transaction() as session:
        for n in range(30):
            await webhooks.enqueue(session, webhooks.BOOKING_CHANGED, {"n": n})
    # Two databases handles = two processes' worth of connections.
    other = Database(db.url)
    jobs = [DeliveryJob(db, settings), DeliveryJob(other, settings)]
    try:
        for _ in range(4):
            await asyncio.gather(*(job.run_once() for job in jobs))
            await asyncio.gather(*(job.settle() for job in jobs))
        await drain(jobs[0], db)
    finally:
        for job in jobs:
            await job.stop()
        await other.dispose()
    numbers = sorted(body["data"]["n"] for body in receiver.bodies())
    assert numbers == list(range(30))
    assert all(d.attempts == 1 for d in await deliveries(db))


async def test_running_app_delivers_in_background(
    client: TestClient[web.Request, web.Application], db: Database, receiver: Receiver
) -> None:
    await add_endpoint(db, receiver.url)
    async with db.transaction() as session:
        await webhooks.enqueue(session, webhooks.BOOKING_CREATED, {"booking_id": "b"})

    async def arrived() -> bool:
        return len(receiver.received) == 1

    await wait_until(arrived, within=5)


async def test_closing_a_consultation_sends_consultation_closed(
    live: Any, make_staff: Any, db: Database, receiver: Receiver
) -> None:
    await add_endpoint(db, receiver.url, [webhooks.CONSULTATION_CLOSED])
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    shopper = await live.shopper()
    consultation = await shopper.ok("queue.join", {"kind": "chat"})
    await console.wait_for("offer.new")
    await console.ok("offer.accept", {"consultation_id": consultation["id"]})
    # Nothing is sent for the steps before closing.
    assert await deliveries(db) == []
    await console.ok("consultation.close", {"consultation_id": consultation["id"], "notes": "done"})

    async def arrived() -> bool:
        return len(receiver.received) == 1

    await wait_until(arrived, within=5)
    event = receiver.bodies()[0]
    assert event["type"] == "consultation.closed"
    assert event["data"]["consultation_id"] == consultation["id"]
    assert event["data"]["advisor_id"] == str(advisor.id)
    assert event["data"]["kind"] == "chat"
