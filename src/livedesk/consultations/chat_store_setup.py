"""Which chat store this process uses, chosen from the database URL (``chat_store.py`` says
what each keeps): a module of its own, since the PostgreSQL and ORM stores build on
``chat_store``'s types."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy.engine import make_url

from livedesk.consultations.chat_store import CHAT_STORE, ChatStore, SqliteChatStore
from livedesk.consultations.chat_store_orm import OrmChatStore
from livedesk.consultations.chat_store_pg import PgChatStore
from livedesk.kit.context import DB


def _sqlite_path(url: str) -> str | None:
    """The file behind a SQLite URL; None for anything the writer thread cannot share (an
    in-memory database is private to its connection)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return database


async def chat_store_ctx(app: web.Application) -> AsyncIterator[None]:
    db = app[DB]
    path = _sqlite_path(db.url)
    store: ChatStore
    if path is not None:
        store = SqliteChatStore(path)
    elif make_url(db.url).drivername.startswith("postgresql"):
        store = await PgChatStore.open(db.url, db.budget)
    else:
        store = OrmChatStore(db)
    app[CHAT_STORE] = store
    yield
    await store.close()
