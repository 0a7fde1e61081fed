"""Migrations build the whole schema from an empty database, on SQLite and PostgreSQL, and
the result matches the models exactly."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection, make_url

from livedesk.kit.db import make_engine
from livedesk.kit.migrate import current_revision, head_revision, upgrade
from livedesk.models import Base
from tests.conftest import PG_URL


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _migrate_and_compare(url: str) -> None:
    await upgrade(url)
    engine = make_engine(url, immediate=False)
    try:
        assert await current_revision(engine) == head_revision(url)
        async with engine.connect() as connection:
            diff = await connection.run_sync(_diff)
        assert diff == [], f"models and migrations disagree: {diff}"
        # Running it again is a no-op, not an error.
        await upgrade(url)
        assert await current_revision(engine) == head_revision(url)
    finally:
        await engine.dispose()


async def test_migrations_from_empty(db_kind: str, tmp_path: Path) -> None:
    if db_kind == "sqlite":
        await _migrate_and_compare(f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}")
        return
    # A brand-new PostgreSQL database, not the shared test one.
    base = make_url(PG_URL)
    name = f"livedesk_mig_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(
        host=base.host,
        port=base.port or 5432,
        user=base.username,
        password=base.password,
        database="postgres",
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await _migrate_and_compare(base.set(database=name).render_as_string(hide_password=False))
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()
