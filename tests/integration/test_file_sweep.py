"""Chat files uploaded but never sent are deleted after LIVEDESK_UNSENT_FILE_MINUTES (row and
bytes); sent ones and recent ones stay; a send after the sweep answers file_not_found."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from livedesk.consultations.file_sweep import sweep_unsent
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import ChatFile
from livedesk.settings import Settings
from livedesk.uploads import FILE_STORE
from tests.integration.test_chat_files import (
    advisor_console,
    bearer,
    files_url,
    form,
    open_chat,
    png,
    stored_files,
)

__all__ = ["anon"]
from tests.integration.test_chat_files import anon


async def _upload(anon: aiohttp.ClientSession, chat_id: str, token: str) -> str:
    response = await anon.post(files_url(chat_id), data=form(png()), headers=bearer(token))
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


async def test_unsent_files_are_swept_sent_and_recent_ones_stay(
    live: Any,
    make_staff: Any,
    anon: aiohttp.ClientSession,
    db: Database,
    client: TestClient[Any, Any],
    settings: Settings,
) -> None:
    _, console = await advisor_console(live, make_staff)
    chat = await open_chat(live, console)
    sent, unsent, recent = [await _upload(anon, chat.id, chat.token) for _ in range(3)]
    await chat.shopper.ok(
        "chat.send",
        {"consultation_id": chat.id, "client_id": "img-sweep-01", "kind": "image", "data": {"file_id": sent}},
    )
    day_ago = utcnow() - timedelta(minutes=settings.unsent_file_minutes + 1)
    async with db.transaction() as session:
        await session.execute(
            update(ChatFile)
            .where(ChatFile.id.in_([uuid.UUID(sent), uuid.UUID(unsent)]))
            .values(created_at=day_ago)
        )

    async with db.transaction() as session:
        swept = await sweep_unsent(
            session, client.server.app[FILE_STORE], utcnow() - timedelta(minutes=settings.unsent_file_minutes)
        )
    assert swept == 1
    async with db.read() as session:
        left = {str(i) for i in await session.scalars(select(ChatFile.id))}
    assert left == {sent, recent}
    assert {p.name for p in stored_files(settings)} == {sent, recent}

    # The swept file can no longer be sent: a clear error, nothing stored.
    refused = await chat.shopper.call(
        "chat.send",
        {
            "consultation_id": chat.id,
            "client_id": "img-sweep-02",
            "kind": "image",
            "data": {"file_id": unsent},
        },
    )
    assert refused["error"]["code"] == "file_not_found"
    # A second sweep finds nothing more to do.
    async with db.transaction() as session:
        assert await sweep_unsent(session, client.server.app[FILE_STORE], utcnow() - timedelta(hours=1)) == 0
