"""Servers and data for bench/realtime.py: the bare Socket.IO echo baseline, the database each
step starts from (a fresh SQLite file, or a PostgreSQL database emptied first), the consultations
and shoppers written straight to it, and the ``livedesk serve`` processes that share it."""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import HOST, ServerProcess, start_livedesk

PASSWORD = "bench password 1234"  # noqa: S105 - a throwaway account in a temp database


def serve_echo(port: int) -> None:
    """The baseline: a bare python-socketio server whose chat.send handler echoes."""
    import socketio
    from aiohttp import web

    sio = socketio.AsyncServer(
        async_mode="aiohttp", async_handlers=False, logger=False, engineio_logger=False
    )

    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        return None

    async def echo(sid: str, data: Any) -> Any:
        return {"ok": True, "data": data}

    sio.on("connect", connect, namespace="/shopper")
    sio.on("chat.send", echo, namespace="/shopper")
    app = web.Application()
    sio.attach(app)

    async def ready(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app.router.add_get("/readyz", ready)
    web.run_app(app, host=HOST, port=port, print=None, access_log=None)


# --------------------------------------------------------------------------- database setup


async def fresh_database(directory: Path, database_url: str = "") -> str:
    """A migrated, empty database: a SQLite file in ``directory``, or ``database_url``
    (PostgreSQL, a database of the bench's own) with its schema dropped and made again."""
    from sqlalchemy import text

    from livedesk.kit.db import Database
    from livedesk.kit.migrate import upgrade

    os.makedirs(directory, exist_ok=True)
    url = database_url or f"sqlite+aiosqlite:///{directory / 'livedesk.sqlite3'}"
    if database_url:
        db = Database(url)
        try:
            async with db.transaction() as session:
                await session.execute(text("DROP SCHEMA public CASCADE"))
                await session.execute(text("CREATE SCHEMA public"))
        finally:
            await db.dispose()
    await upgrade(url)
    return url


@dataclass(frozen=True)
class Shape:
    """Where the servers keep their state: the database, Redis, and how many processes."""

    database_url: str = ""
    redis_url: str = ""
    processes: int = 1

    @property
    def database(self) -> str:
        return "postgresql" if self.database_url else "sqlite"


def start_cluster(name: str, workdir: Path, url: str, secret: str, shape: Shape) -> list[ServerProcess]:
    """``shape.processes`` ``livedesk serve`` processes on one database (and Redis, if any).
    Each run fans out on a Redis channel of its own: channels are shared by every database
    number of a Redis server, and others may be using it."""
    extra: dict[str, str] = {}
    if shape.redis_url:
        extra = {
            "LIVEDESK_REDIS_URL": shape.redis_url,
            "LIVEDESK_REDIS_CHANNEL": f"bench-realtime-{secrets.token_hex(6)}",
        }
    return [start_livedesk(f"{name}-{i}", workdir, url, secret, **extra) for i in range(shape.processes)]


@dataclass(frozen=True)
class Pair:
    consultation_id: str
    shopper_token: str
    advisor_cookie: str


async def seed_pairs(url: str, secret: str, count: int) -> list[Pair]:
    """``count`` active chat consultations, each with its own shopper and signed-in advisor,
    written straight to the database (routing and login have their own costs; this measures
    the chat path)."""
    from livedesk.identity import VisitorClaims, VisitorTokens
    from livedesk.kit.clock import utcnow
    from livedesk.kit.db import Database
    from livedesk.models import (
        Consultation,
        ConsultationKind,
        ConsultationStatus,
        Role,
        Shopper,
        Staff,
        StaffSession,
    )
    from livedesk.staff.passwords import hash_password

    tokens = VisitorTokens(secret, 24 * 3600)
    password_hash = hash_password(PASSWORD)
    db = Database(url)
    pairs: list[Pair] = []
    now = utcnow()
    try:
        for start in range(0, count, 500):
            async with db.transaction() as session:
                for i in range(start, min(count, start + 500)):
                    staff = Staff(
                        id=uuid.uuid4(),
                        email=f"advisor-{i}@bench.test",
                        password_hash=password_hash,
                        role=Role.ADVISOR,
                        display_name=f"Advisor {i}",
                    )
                    shopper = Shopper(id=uuid.uuid4(), display_name=f"Shopper {i}")
                    cookie = secrets.token_urlsafe(32)
                    # The session table keeps only the SHA-256 of the cookie (identity/sessions.py).
                    row = StaffSession(
                        id=hashlib.sha256(cookie.encode()).hexdigest(),
                        staff_id=staff.id,
                        csrf_token=secrets.token_urlsafe(32),
                    )
                    consultation = Consultation(
                        id=uuid.uuid4(),
                        shopper_id=shopper.id,
                        kind=ConsultationKind.CHAT,
                        status=ConsultationStatus.ACTIVE,
                        advisor_id=staff.id,
                        requested_at=now - timedelta(minutes=2),
                        queued_at=now - timedelta(minutes=2),
                        accepted_at=now - timedelta(minutes=1),
                        passed_over=[],
                        skills=[],
                    )
                    session.add_all([staff, shopper])
                    await session.flush()
                    session.add_all([row, consultation])
                    token = tokens.issue(VisitorClaims(shopper_id=shopper.id, visitor_id=f"bench{i}"))
                    pairs.append(Pair(str(consultation.id), token, cookie))
    finally:
        await db.dispose()
    return pairs


async def seed_shoppers(url: str, count: int) -> list[uuid.UUID]:
    """``count`` shopper profiles (a visitor token must name a shopper that exists)."""
    from livedesk.kit.db import Database
    from livedesk.models import Shopper

    db = Database(url)
    ids = [uuid.uuid4() for _ in range(count)]
    try:
        for start in range(0, count, 1000):
            async with db.transaction() as session:
                session.add_all(Shopper(id=i, display_name="Idle shopper") for i in ids[start : start + 1000])
    finally:
        await db.dispose()
    return ids


async def make_advisor(url: str) -> str:
    from livedesk.kit.db import Database
    from livedesk.models import Role, Staff
    from livedesk.staff.passwords import hash_password

    db = Database(url)
    email = "advisor@bench.test"
    try:
        async with db.transaction() as session:
            session.add(
                Staff(
                    email=email,
                    password_hash=hash_password(PASSWORD),
                    role=Role.ADVISOR,
                    display_name="Bench advisor",
                )
            )
    finally:
        await db.dispose()
    return email
