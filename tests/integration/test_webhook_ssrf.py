"""Outgoing webhooks as an SSRF probe, written as the attack: an admin (or whoever took an
admin's session) points an endpoint at loopback, private, link-local, CGNAT or v4-mapped
addresses, or a name that resolves to one, and reads the answer in the delivery log.

A real receiver listens on 127.0.0.1 and ::1 (one port) so a refused delivery is shown not to
arrive, and the same receiver is reached once the operator allows its network."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy import select

from livedesk.integrations.delivery import Claimed, DeliveryJob, post
from livedesk.integrations.egress import GuardedResolver, parse_networks
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import Role
from livedesk.models.integrations import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from livedesk.outbox import webhooks
from livedesk.settings import Settings
from tests.conftest import login

SECRET = "whsec_test_" + "s" * 20
LEAK = "INTERNAL-ONLY db_password=hunter2"


@dataclass
class Receiver:
    port: int = 0
    received: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    location: str = ""

    def url(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """One port on 127.0.0.1 and ::1: today's code reaches it by either, and by localhost."""
    rec = Receiver()

    async def hook(request: web.Request) -> web.Response:
        rec.received.append(request.host)
        status = rec.statuses.pop(0) if rec.statuses else 200
        headers = {"Location": rec.location} if rec.location else None
        # An internal service's error page: exactly what must not reach the delivery log.
        return web.Response(status=status, text=LEAK if status >= 300 else "ok", headers=headers)

    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    v4 = web.TCPSite(runner, "127.0.0.1", 0)
    await v4.start()
    server = v4._server
    assert isinstance(server, asyncio.base_events.Server)
    rec.port = server.sockets[0].getsockname()[1]
    await web.TCPSite(runner, "::1", rec.port).start()
    yield rec
    await runner.cleanup()


def with_allow(settings: Settings, allow: str) -> Settings:
    return settings.model_copy(
        update={
            "webhook_poll_seconds": 0,
            "webhook_backoff_seconds": 0.05,
            "webhook_max_attempts": 2,
            # Today's code would try to connect: keep an unroutable address from hanging the test.
            "webhook_timeout_seconds": 2.0,
            "webhook_allow_networks": allow,
        }
    )


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """Nothing allowed, unless a test parametrises the allow list (indirect)."""
    return with_allow(settings, getattr(request, "param", ""))


async def add_endpoint(db: Database, url: str) -> None:
    async with db.transaction() as session:
        # Straight into the table: the attack on the delivery job itself, whatever the API let in
        # (rows from before this rule, a name that resolved elsewhere when it was entered).
        session.add(WebhookEndpoint(id=uuid.uuid4(), url=url, secret=SECRET, event_types=[], description=""))
        await webhooks.enqueue(session, webhooks.BOOKING_CREATED, {"booking_id": "b1"})


async def deliver_once(db: Database, settings: Settings) -> WebhookDelivery:
    job = DeliveryJob(db, settings)
    try:
        assert await job.run_once() == 1
        await job.settle()
    finally:
        await job.stop()
    async with db.read() as session:
        return (await session.scalars(select(WebhookDelivery))).one()


async def attempt_errors(db: Database) -> list[str]:
    async with db.read() as session:
        return list((await session.scalars(select(WebhookAttempt.error))).all())


REFUSED = [
    ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ("[::1]", "::1 is a loopback address"),
    ("[::ffff:127.0.0.1]", "127.0.0.1 is a loopback address"),
    ("10.0.0.1", "10.0.0.1 is a private address"),
    ("169.254.169.254", "169.254.169.254 is a link-local address"),
    ("100.64.0.1", "100.64.0.1 is a shared (CGNAT) address"),
    ("[64:ff9b::7f00:1]", "127.0.0.1 is a loopback address"),
    ("localhost", "localhost resolves only to refused addresses (127.0.0.1 is a loopback address"),
]


@pytest.mark.parametrize(("host", "reason"), REFUSED, ids=[h for h, _ in REFUSED])
async def test_delivery_to_an_internal_address_is_refused(
    db: Database, settings: Settings, receiver: Receiver, host: str, reason: str
) -> None:
    await add_endpoint(db, receiver.url(host))
    row = await deliver_once(db, settings)
    assert receiver.received == []
    assert row.last_status_code is None
    assert row.last_error.startswith("refused: ")
    assert reason in row.last_error
    assert await attempt_errors(db) == [row.last_error]
    # A refusal is an ordinary failed try: retried later, failed at the last try.
    assert row.status == DeliveryStatus.PENDING
    assert row.attempts == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]"])
async def test_an_allowed_network_reaches_the_local_receiver(
    db: Database, settings: Settings, receiver: Receiver, host: str
) -> None:
    await add_endpoint(db, receiver.url(host))
    row = await deliver_once(db, with_allow(settings, "127.0.0.0/8, ::1/128"))
    assert row.status == DeliveryStatus.SUCCEEDED, row.last_error
    assert len(receiver.received) == 1


async def test_allowing_one_network_does_not_open_another(
    db: Database, settings: Settings, receiver: Receiver
) -> None:
    await add_endpoint(db, receiver.url("127.0.0.1"))
    row = await deliver_once(db, with_allow(settings, "10.20.0.0/16"))
    assert receiver.received == []
    assert row.last_error == "refused: 127.0.0.1 is a loopback address"


async def test_a_stored_url_without_a_valid_host_is_a_logged_failure(
    db: Database, settings: Settings
) -> None:
    # Rows from before the API checked URLs: the delivery pass records a reason and goes on.
    await add_endpoint(db, "http://[::1/x")
    row = await deliver_once(db, settings)
    assert row.last_error.startswith("refused: the URL is not valid")
    assert row.attempts == 1


async def test_an_error_answer_body_is_not_stored(
    db: Database, settings: Settings, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    await add_endpoint(db, receiver.url())
    row = await deliver_once(db, with_allow(settings, "127.0.0.1/32"))
    assert len(receiver.received) == 1
    assert row.last_status_code == 500
    assert row.last_error == "HTTP 500 Internal Server Error"
    assert await attempt_errors(db) == ["HTTP 500 Internal Server Error"]


async def test_a_non_http_banner_is_not_stored(db: Database, settings: Settings) -> None:
    # A service that is not HTTP (here an SSH-like banner): today its words end up in the
    # parse error's message, and so in the log.
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(f"SSH-2.0-OpenSSH_9.6 {LEAK}\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(banner, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await add_endpoint(db, f"http://127.0.0.1:{port}/")
        row = await deliver_once(db, with_allow(settings, "127.0.0.1/32"))
    finally:
        server.close()
        await server.wait_closed()
    assert row.last_status_code is None
    assert row.last_error
    assert "hunter2" not in row.last_error
    assert "SSH" not in row.last_error
    assert all("hunter2" not in e for e in await attempt_errors(db))


async def test_a_redirect_is_not_followed(db: Database, settings: Settings, receiver: Receiver) -> None:
    receiver.statuses = [302]
    receiver.location = receiver.url("[::1]", "/metadata")
    await add_endpoint(db, receiver.url())
    row = await deliver_once(db, with_allow(settings, "127.0.0.1/32"))
    assert receiver.received == [f"127.0.0.1:{receiver.port}"]
    assert row.last_status_code == 302
    assert row.last_error == "HTTP 302 Found"


@dataclass
class FakeDns(AbstractResolver):
    """A name server the attacker controls: each lookup of the name gets the next answer."""

    answers: list[list[str]]
    lookups: int = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answer = self.answers[min(self.lookups, len(self.answers) - 1)]
        self.lookups += 1
        return [
            ResolveResult(
                hostname=host,
                host=ip,
                port=port,
                family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for ip in answer
        ]

    async def close(self) -> None:
        return None


def claimed(url: str) -> Claimed:
    return Claimed(
        id=uuid.uuid4(),
        lease=utcnow(),
        attempts=0,
        url=url,
        secret=SECRET,
        event_id=uuid.uuid4(),
        event_type=webhooks.BOOKING_CREATED,
        body=b"{}",
    )


async def post_via(dns: FakeDns, allow: str, url: str) -> tuple[int | None, str]:
    resolver = GuardedResolver(parse_networks(allow), inner=dns)
    # No DNS cache: every post asks the name server again, as after a TTL of 0.
    connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector) as http:
        return await post(http, claimed(url), 2.0, parse_networks(allow))


async def test_dns_rebinding_reaches_only_checked_addresses(receiver: Receiver) -> None:
    # The name answers an address the operator allowed, then 127.0.0.1 (TTL 0): the second
    # post is refused, because the address connected to is the one just checked.
    dns = FakeDns(answers=[["::1"], ["127.0.0.1"]])
    url = f"http://hooks.attacker.test:{receiver.port}/hook"
    assert await post_via(dns, "::1/128", url) == (200, "")
    status, error = await post_via(dns, "::1/128", url)
    assert (status, dns.lookups) == (None, 2)
    assert (
        error
        == "refused: hooks.attacker.test resolves only to refused addresses (127.0.0.1 is a loopback address)"
    )
    assert receiver.received == [f"hooks.attacker.test:{receiver.port}"]


async def test_a_name_with_mixed_answers_connects_only_to_allowed_ones(receiver: Receiver) -> None:
    # The forbidden answer is dropped, not tried first: the metadata address never sees a packet.
    dns = FakeDns(answers=[["169.254.169.254", "127.0.0.1"]])
    url = f"http://mixed.attacker.test:{receiver.port}/hook"
    assert await post_via(dns, "127.0.0.1/32", url) == (200, "")
    assert len(receiver.received) == 1


async def test_admin_api_refuses_a_literal_internal_address(
    client: Any, make_staff: Any, db: Database, receiver: Receiver
) -> None:
    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    for url in (
        "http://127.0.0.1:9/x",
        "http://[::ffff:10.0.0.1]/x",
        "http://169.254.169.254/latest/meta-data",
    ):
        refused = await client.post("/api/v1/webhooks/endpoints", json={"url": url}, headers=headers)
        assert refused.status == 422, url
        error = (await refused.json())["error"]
        assert error["code"] == "webhook_url_forbidden"
        assert "LIVEDESK_WEBHOOK_ALLOW_NETWORKS" in error["message"]
    created = await client.post(
        "/api/v1/webhooks/endpoints", json={"url": "https://hooks.example.com/x"}, headers=headers
    )
    assert created.status == 201
    endpoint = await created.json()
    moved = await client.patch(
        f"/api/v1/webhooks/endpoints/{endpoint['id']}", json={"url": "http://[::1]/x"}, headers=headers
    )
    assert moved.status == 422
    assert (await moved.json())["error"]["code"] == "webhook_url_forbidden"
    broken = await client.post("/api/v1/webhooks/endpoints", json={"url": "http://[zz]/x"}, headers=headers)
    assert broken.status == 422
    assert (await broken.json())["error"]["code"] == "invalid_url"
    listed = await (await client.get("/api/v1/webhooks/endpoints")).json()
    assert [e["url"] for e in listed] == ["https://hooks.example.com/x"]


@pytest.mark.parametrize("settings", ["127.0.0.0/8"], indirect=True)
async def test_admin_api_accepts_an_allowed_network(client: Any, make_staff: Any) -> None:
    headers = await login(client, await make_staff(Role.ADMIN))
    created = await client.post(
        "/api/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=headers
    )
    assert created.status == 201
    # The allow list is per network: the metadata address stays refused.
    refused = await client.post(
        "/api/v1/webhooks/endpoints", json={"url": "http://169.254.169.254/x"}, headers=headers
    )
    assert refused.status == 422
