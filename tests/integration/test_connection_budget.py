"""Four replicas under load stay within their PostgreSQL connection budget (issue 22, item 6).

Each process may hold ``LIVEDESK_DB_MAX_CONNECTIONS`` connections (kit/db.PoolBudget: half for
the chat store's pool, half for the engine), so ``replicas × budget`` plus headroom for
migrations and admins is what a deployment must keep below the server's ``max_connections``
(README, "Connection budget"). The server's own limit cannot be changed from a test, so the
test gives each replica a small budget and checks the peak: four real ``livedesk serve``
processes on PostgreSQL and Redis, chat fanned out between them (every shopper and its advisor
on different replicas), many sends in flight at once — far more than the budget — while
``pg_stat_activity`` is sampled. Every replica's connections (named ``livedesk/<pid>`` and
``livedesk-chat/<pid>``) stay within its budget, and every send is stored and delivered:
sends wait for a connection (at most ``LIVEDESK_DB_POOL_TIMEOUT_SECONDS``), they don't fail.

And when the pool stays exhausted past that wait, a request gets a JSON 503 and an event a
``database_unavailable`` ack, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import make_url, text

from livedesk.consultations.chat_store_pg import asyncpg_dsn
from livedesk.identity import VisitorClaims, VisitorTokens
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB
from livedesk.kit.db import Database, is_unavailable
from livedesk.models import Consultation, ConsultationKind, ConsultationStatus, Role, Shopper
from livedesk.settings import Settings
from tests.conftest import SocketClient
from tests.integration.test_faults import _close, _env
from tests.integration.test_multiprocess import REDIS_URL, Cluster, shopper_socket, staff_socket, wait_ready

pytestmark = pytest.mark.postgres

REPLICAS = 4
BUDGET = 4  # per replica: 2 for the chat store, 2 for the engine
PAIRS = 8
SENDS = 12  # per pair, all in flight at once


async def _seed(db: Database, make_staff: Any, secret: str) -> list[tuple[Any, str, str]]:
    """PAIRS active chats: (advisor account, consultation id, shopper token)."""
    tokens = VisitorTokens(secret, 3600)
    pairs = []
    now = utcnow()
    for i in range(PAIRS):
        advisor = await make_staff(Role.ADVISOR)
        shopper = Shopper(id=uuid.uuid4(), display_name=f"Shopper {i}")
        consultation = Consultation(
            id=uuid.uuid4(),
            shopper_id=shopper.id,
            kind=ConsultationKind.CHAT,
            status=ConsultationStatus.ACTIVE,
            advisor_id=advisor.id,
            requested_at=now - timedelta(minutes=2),
            queued_at=now - timedelta(minutes=2),
            accepted_at=now - timedelta(minutes=1),
            passed_over=[],
            skills=[],
        )
        async with db.transaction() as session:
            session.add(shopper)
            await session.flush()
            session.add(consultation)
        token = tokens.issue(VisitorClaims(shopper_id=shopper.id, visitor_id=f"budget{i}"))
        pairs.append((advisor, str(consultation.id), token))
    return pairs


async def test_four_replicas_stay_within_their_connection_budget(
    database_url: str, tmp_path: Path, make_staff: Any, db: Database
) -> None:
    env = _env(database_url, REDIS_URL)
    env["LIVEDESK_DB_MAX_CONNECTIONS"] = str(BUDGET)
    cluster = Cluster(tmp_path, env)
    sockets: list[SocketClient] = []
    peaks: Counter[str] = Counter()
    sampling = True
    dsn = asyncpg_dsn(database_url)
    watcher = await asyncpg.connect(dsn)

    async def sample() -> None:
        # Per process: the engine's and the chat store's connections together.
        query = (
            "SELECT split_part(application_name, '/', 2) AS pid, count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name LIKE 'livedesk%/%'"
            " GROUP BY 1"
        )
        while sampling:
            for row in await watcher.fetch(query):
                peaks[row["pid"]] = max(peaks[row["pid"]], row["count"])
            await asyncio.sleep(0.02)

    sampler = asyncio.ensure_future(sample())
    try:
        servers = [cluster.start(f"r{i}") for i in range(REPLICAS)]
        await asyncio.gather(*(wait_ready(s, within=90) for s in servers))
        pairs = await _seed(db, make_staff, env["LIVEDESK_SECRET_KEY"])
        consoles, shoppers = [], []
        for i, (advisor, _, token) in enumerate(pairs):
            consoles.append(await staff_socket(servers[i % REPLICAS], advisor))
            shoppers.append(await shopper_socket(servers[(i + 1) % REPLICAS], token))
        sockets += consoles + shoppers

        async def burst(i: int) -> list[Any]:
            _, cid, _ = pairs[i]
            calls = []
            for k in range(SENDS):
                sender = shoppers[i] if k % 2 == 0 else consoles[i]
                payload = {"consultation_id": cid, "client_id": f"budget-{i:02d}-{k:04d}", "body": f"m{k}"}
                calls.append(sender.call("chat.send", payload, deadline=30))
            return list(await asyncio.gather(*calls))

        acks = [ack for acks in await asyncio.gather(*(burst(i) for i in range(PAIRS))) for ack in acks]
        assert all(ack["ok"] for ack in acks), [ack for ack in acks if not ack["ok"]][:3]
        assert len(acks) == PAIRS * SENDS
        # Fanned out across the replicas: each party has every message of the other.
        for i in range(PAIRS):
            last_shopper, last_staff = f"budget-{i:02d}-{SENDS - 2:04d}", f"budget-{i:02d}-{SENDS - 1:04d}"
            await consoles[i].wait_for(
                "chat.message", lambda m, c=last_shopper: m["client_id"] == c, within=15
            )
            await shoppers[i].wait_for("chat.message", lambda m, c=last_staff: m["client_id"] == c, within=15)
        sampling = False
        await sampler
        # (This test's own connections, the fixtures' engine, are named after its pid too.)
        replicas = {pid: peaks[pid] for pid in (str(s.proc.pid) for s in servers)}
        assert all(replicas.values()), peaks
        assert max(replicas.values()) <= BUDGET, replicas
        # The load did reach for more than one connection per replica (the check can fail).
        assert sum(replicas.values()) > REPLICAS, replicas
    finally:
        sampling = False
        with contextlib.suppress(Exception):
            await sampler
        await watcher.close()
        await _close(sockets)
        cluster.stop_all()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The smallest budget: one connection for the engine, one for the chat store; a short wait.
    return settings.model_copy(update={"db_max_connections": 2, "db_pool_timeout_seconds": 0.5})


async def test_an_exhausted_pool_answers_503_and_an_error_ack_not_a_hang(live: Any) -> None:
    shopper = await live.shopper()
    app = live.http.app
    async with app[DB].engine.connect() as held:  # the engine's only connection, busy
        await held.execute(text("SELECT 1"))
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await live.http.post("/api/v1/visitors", json={})
        assert response.status == 503, await response.text()
        assert (await response.json())["error"]["code"] == "database_unavailable"
        ack = await shopper.call("consultation.current", deadline=10)
        assert ack["ok"] is False, ack
        assert ack["error"]["code"] == "database_unavailable"
        # Each waited the pool's timeout, not the default 30 s of SQLAlchemy's pool.
        assert loop.time() - started < 5
    # The connection back in the pool: service resumes by itself.
    response = await live.http.post("/api/v1/visitors", json={})
    assert response.status == 201, await response.text()
    assert (await shopper.call("consultation.current"))["ok"] is True


async def test_a_server_that_refuses_connections_is_an_outage_not_a_bug(database_url: str) -> None:
    """PostgreSQL full up (too_many_connections: replicas together past max_connections, seen in
    the reconnect-storm bench) is answered as ``database_unavailable``, never ``internal``. A
    role allowed no connections gets the same refusal (SQLSTATE 53300) from the real server."""
    role = f"livedesk_full_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
        url = make_url(database_url).set(username=role, password=None)
        # Through the engine (every request and event) …
        refused = Database(url.render_as_string(hide_password=False))
        try:
            with pytest.raises(sa_exc.DBAPIError) as through_engine:
                async with refused.read() as session:
                    await session.execute(text("SELECT 1"))
            assert is_unavailable(through_engine.value), through_engine.value
        finally:
            await refused.dispose()
        # … and through asyncpg itself (the chat store's pool).
        with pytest.raises(asyncpg.PostgresError) as direct:
            await asyncpg.connect(asyncpg_dsn(url.render_as_string(hide_password=False)))
        assert is_unavailable(direct.value), direct.value
        # A real bug stays a bug.
        assert not is_unavailable(ValueError("no"))
    finally:
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()
