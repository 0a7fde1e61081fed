"""Apply and inspect Alembic migrations programmatically (CLI, demo, /readyz, tests)."""

from __future__ import annotations

import asyncio
import functools
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("livedesk.models") / "migrations"))
    # Alembic's ini interpolation treats % specially; URLs may carry escaped characters.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


async def upgrade(url: str) -> None:
    """Bring the database to the newest revision. Alembic's env runs its own event loop, so
    it goes to a worker thread."""
    await asyncio.to_thread(_upgrade, url)


@functools.cache
def head_revision(url: str) -> str | None:
    """The newest revision shipped with this code (read from disk once)."""
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(_current)
