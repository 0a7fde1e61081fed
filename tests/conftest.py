"""Shared fixtures: a real database (SQLite always, PostgreSQL when
LIVEDESK_TEST_DATABASE_URL is set), the real app on a real port, and factories."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import functools
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller as SmtpController
from aiosmtpd.handlers import Message as MessageHandler
from pydantic import SecretStr, ValidationError
from sqlalchemy import text

from livedesk.app import create_app
from livedesk.kit.context import DB
from livedesk.kit.db import Database, Outgoing
from livedesk.kit.migrate import upgrade
from livedesk.models import Base, Role, Staff
from livedesk.settings import Settings
from livedesk.staff.passwords import hash_password
from livedesk.wiring.outgoing import outgoing_schemas

PG_URL = os.environ.get("LIVEDESK_TEST_DATABASE_URL", "")
TEST_PASSWORD = "correct horse battery staple"
# Hashing with argon2's defaults costs ~50 ms; tests create many accounts with one password.
_TEST_HASH = hash_password(TEST_PASSWORD)


def pytest_report_header() -> str:
    extra = " + postgresql" if PG_URL else " (set LIVEDESK_TEST_DATABASE_URL for postgresql too)"
    return f"livedesk databases: sqlite{extra}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that touches the database runs once per configured database.
    # A test marked ``postgres`` is about PostgreSQL alone: it runs there, or (without
    # LIVEDESK_TEST_DATABASE_URL) pytest reports it skipped for an empty parameter set.
    if "db_kind" in metafunc.fixturenames:
        kinds = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
        if metafunc.definition.get_closest_marker("postgres") is not None:
            kinds = [kind for kind in kinds if kind == "postgresql"]
        metafunc.parametrize("db_kind", kinds, scope="session")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (far faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_migrated() -> str:
    """The PostgreSQL test database, emptied and migrated from nothing once per run."""
    assert PG_URL
    asyncio.run(_reset_schema(PG_URL))
    asyncio.run(upgrade(PG_URL))
    return PG_URL


async def _reset_schema(url: str) -> None:
    db = Database(url)
    async with db.transaction() as session:
        await session.execute(text("DROP SCHEMA public CASCADE"))
        await session.execute(text("CREATE SCHEMA public"))
    await db.dispose()


@pytest.fixture
def database_url(db_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if db_kind == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "livedesk.sqlite3"
        shutil.copyfile(template, target)
        yield f"sqlite+aiosqlite:///{target}"
    else:
        url: str = request.getfixturevalue("pg_migrated")
        asyncio.run(_truncate_all(url))
        yield url


async def _truncate_all(url: str) -> None:
    db = Database(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    async with db.transaction() as session:
        await session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await db.dispose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=SecretStr("test-secret-" + uuid.uuid4().hex),
        log_level="warning",
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[web.Application]:
    """The real app; every event it sends is checked against its schema (see ``_checked``)."""
    application = create_app(settings)
    wrong: list[str] = []
    application.on_startup.append(functools.partial(_checked, wrong=wrong))
    yield application
    assert not wrong, f"events sent against their schema: {wrong[:5]}"


_SCHEMAS = outgoing_schemas()


async def _checked(app: web.Application, *, wrong: list[str]) -> None:
    """Wrap the event sink (set by the realtime setup, a cleanup context, which runs first):
    an event with no schema in ``wiring/outgoing.py``, or a payload its schema refuses, fails
    the test at its end (not inside the app, where the send would just log an error)."""
    db: Database = app[DB]
    inner = db.sink()

    async def check(outgoing: Outgoing) -> None:
        schema = _SCHEMAS.get(outgoing.event)
        if schema is None:
            wrong.append(f"{outgoing.event}: no schema")
        else:
            try:
                schema.model_validate(outgoing.data)
            except ValidationError as exc:
                wrong.append(f"{outgoing.event}: {exc}")
        await inner(outgoing)

    db.event_sink = check


@pytest.fixture
async def client(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A real HTTP client talking to the real app on a loopback port."""
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@dataclass
class StaffAccount:
    id: uuid.UUID
    email: str
    role: Role
    password: str = TEST_PASSWORD


@pytest.fixture
def make_staff(db: Database) -> Any:
    """Create a staff account straight in the database (the REST path has its own tests)."""

    async def make(role: Role = Role.ADVISOR, **fields: Any) -> StaffAccount:
        email = fields.pop("email", f"{role.value}-{uuid.uuid4().hex[:8]}@example.test")
        staff = Staff(
            email=email,
            password_hash=_TEST_HASH,
            role=role,
            display_name=fields.pop("display_name", email.split("@")[0]),
            **fields,
        )
        async with db.transaction() as session:
            session.add(staff)
        return StaffAccount(id=staff.id, email=email, role=role)

    return make


async def login(client: TestClient[web.Request, web.Application], account: StaffAccount) -> dict[str, str]:
    """Sign in; returns headers (the CSRF token) for writes. The cookie stays in the client."""
    response = await client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    return {"X-CSRF-Token": body["csrf_token"]}


# --- real-time ------------------------------------------------------------------------------


class SocketClient:
    """A real python-socketio client that records every event it receives, so tests can
    wait for one (with a deadline) instead of sleeping."""

    def __init__(self, namespace: str) -> None:
        import aiohttp
        import socketio

        self.namespace = namespace
        # Our own HTTP session, closed by us even when the connection is refused.
        self.http = aiohttp.ClientSession()
        self.sio = socketio.AsyncClient(reconnection=False, http_session=self.http)
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

        async def catch_all(event: str, data: Any = None) -> None:
            self.events.append((event, data))
            self._changed.set()

        self.sio.on("*", catch_all, namespace=namespace)

        async def connect_error(data: Any = None) -> None:
            self.events.append(("connect_error", data))

        self.sio.on("connect_error", connect_error, namespace=namespace)

    async def connect(self, url: str, *, auth: Any = None, headers: dict[str, str] | None = None) -> None:
        try:
            await self.sio.connect(
                url,
                namespaces=[self.namespace],
                auth=auth,
                headers=headers or {},
                transports=["websocket"],
                wait_timeout=5,
            )
        except Exception:
            await self.http.close()
            raise

    async def call(self, event: str, payload: Any = None, deadline: float = 5) -> Any:
        args = () if payload is None else (payload,)
        return await self.sio.call(event, *args, namespace=self.namespace, timeout=deadline)

    async def ok(self, event: str, payload: Any = None) -> Any:
        ack = await self.call(event, payload)
        assert ack["ok"] is True, ack
        return ack["data"]

    async def wait_for(self, event: str, predicate: Any = None, within: float = 5.0) -> Any:
        """The first received ``event`` (matching ``predicate``) — already received or to come."""
        deadline = asyncio.get_running_loop().time() + within
        seen = 0
        while True:
            for name, data in self.events[seen:]:
                if name == event and (predicate is None or predicate(data)):
                    return data
            seen = len(self.events)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no {event} within {within}s; got {[e for e, _ in self.events]}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    def received(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def close(self) -> None:
        await self.sio.disconnect()
        await self.http.close()


@pytest.fixture
async def live(client: TestClient[web.Request, web.Application]) -> AsyncIterator[Any]:
    """The running app's URL plus helpers to open real shopper and staff sockets."""
    base = str(client.make_url("/")).rstrip("/")
    opened: list[SocketClient] = []

    class Live:
        url = base
        http = client

        async def visitor(self, **body: Any) -> dict[str, Any]:
            response = await client.post("/api/v1/visitors", json=body)
            assert response.status == 201, await response.text()
            result: dict[str, Any] = await response.json()
            return result

        async def shopper(self, token: str | None = None) -> SocketClient:
            if token is None:
                token = (await self.visitor())["token"]
            sock = SocketClient("/shopper")
            await sock.connect(base, auth={"token": token})
            opened.append(sock)
            return sock

        async def staff_cookie(self, account: StaffAccount) -> str:
            from aiohttp import ClientSession

            async with ClientSession() as http:
                response = await http.post(
                    base + "/api/v1/auth/login", json={"email": account.email, "password": account.password}
                )
                assert response.status == 200, await response.text()
                return response.cookies["livedesk_session"].value

        async def staff(self, account: StaffAccount, cookie: str | None = None) -> SocketClient:
            if cookie is None:
                cookie = await self.staff_cookie(account)
            sock = SocketClient("/staff")
            await sock.connect(base, headers={"Cookie": f"livedesk_session={cookie}"})
            opened.append(sock)
            return sock

    yield Live()
    for sock in opened:
        await sock.close()


async def wait_until(predicate: Any, within: float = 10.0, every: float = 0.05) -> Any:
    """Poll an async predicate until it returns something truthy (a deadline, not a sleep)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(every)


class SmtpInbox(MessageHandler):
    """A real local SMTP server (aiosmtpd) that keeps what it receives, for mail tests."""

    def __init__(self) -> None:
        super().__init__(message_class=email.message.EmailMessage)
        self.messages: list[email.message.Message] = []
        # The bytes as they came over SMTP: what a mail client reads (re-serialising a parsed
        # message would fold its headers anew, hiding or adding folding faults).
        self.raw: list[bytes] = []
        self.port = 0

    def prepare_message(self, session: Any, envelope: Any) -> email.message.Message:
        content = envelope.original_content or envelope.content
        self.raw.append(content if isinstance(content, bytes) else content.encode())
        return super().prepare_message(session, envelope)

    def handle_message(self, message: email.message.Message) -> None:
        self.messages.append(message)

    def parsed(self) -> list[email.message.EmailMessage]:
        """The received mails as sent, parsed with the modern policy (get_content, walk …)."""
        return [email.message_from_bytes(raw, policy=email.policy.default) for raw in self.raw]


@pytest.fixture
def smtp_inbox() -> Iterator[SmtpInbox]:
    inbox = SmtpInbox()
    # aiosmtpd's controller probes its own port after starting, so it needs a real one, not 0.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        inbox.port = probe.getsockname()[1]
    controller = SmtpController(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
