from __future__ import annotations

from typing import Any

from sqlalchemy import text

from livedesk.kit.db import Database


async def test_healthz(client: Any) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_ready_when_migrated(client: Any) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ready"
    assert body["migration"] == body["expected_migration"] is not None


async def test_readyz_503_when_migrations_pending(client: Any, db: Database) -> None:
    async with db.transaction() as session:
        head = await session.scalar(text("SELECT version_num FROM alembic_version"))
        await session.execute(text("UPDATE alembic_version SET version_num = 'stale'"))
    try:
        response = await client.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body["error"]["code"] == "migrations_pending"
        assert "livedesk db upgrade" in body["error"]["message"]
    finally:
        # The PostgreSQL test database is shared by the whole run: put the revision back.
        async with db.transaction() as session:
            await session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
