"""The audit log, read by admins (issue 21 item 4: audit rows through one helper; and a log
someone can read). Failed sign-ins of real accounts are audited; unknown e-mails are not, so a
flood of them writes nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import delete, func, select

from livedesk import audit
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB
from livedesk.kit.db import Database
from livedesk.models import AuditEntry, Role, Staff
from tests.conftest import login, wait_until
from tests.integration.test_timeline import capture_sql

LOG = "/api/v1/audit"


async def _count(db: Database, action: str) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).where(AuditEntry.action == action)) or 0)


async def test_only_admins_read_the_log(
    client: TestClient[web.Request, web.Application], make_staff: Any
) -> None:
    assert (await client.get(LOG)).status == 401
    for role in (Role.ADVISOR, Role.SUPERVISOR):
        await login(client, await make_staff(role))
        answer = await client.get(LOG)
        assert answer.status == 403, role
    await login(client, await make_staff(Role.ADMIN))
    assert (await client.get(LOG)).status == 200


async def test_failed_sign_ins_of_a_real_account_are_audited_unknown_ones_are_not(
    client: TestClient[web.Request, web.Application], make_staff: Any, db: Database
) -> None:
    victim = await make_staff(Role.ADVISOR)
    disabled = await make_staff(Role.ADVISOR, active=False)
    for email, password in (
        (victim.email, "not-her-password"),
        (disabled.email, disabled.password),
        ("nobody@example.test", "whatever"),
    ):
        answer = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert answer.status == 401
        assert (await answer.json())["error"]["code"] == "login_failed"

    async def both_stored() -> bool:
        return await _count(db, "staff.login_failed") == 2

    await wait_until(both_stored, within=10)

    await login(client, await make_staff(Role.ADMIN))
    page = await (await client.get(LOG, params={"action": "staff.login_failed"})).json()
    got = {(e["target_id"], e["details"]["reason"]) for e in page["entries"]}
    assert got == {(str(victim.id), "password"), (str(disabled.id), "disabled")}
    assert all(e["actor"] is None and e["details"]["ip"] for e in page["entries"])
    # The attempted password is nowhere in the row.
    assert "not-her-password" not in str(page)


async def test_the_log_pages_newest_first_without_losing_or_repeating_rows(
    client: TestClient[web.Request, web.Application], make_staff: Any, db: Database
) -> None:
    admin = await make_staff(Role.ADMIN)
    target = uuid.uuid4()
    async with db.transaction() as session:
        for i in range(7):
            audit.record(
                session,
                actor=admin.id,
                action="recording.play",
                target_type="recording",
                target_id=target,
                details={"i": i},
            )
    await login(client, admin)
    seen: list[int] = []
    before: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"target_id": str(target), "limit": 3}
        if before:
            params["before"] = before
        page = await (await client.get(LOG, params=params)).json()
        seen += [e["details"]["i"] for e in page["entries"]]
        assert all(e["actor"]["email"] == admin.email for e in page["entries"])
        before = page["next"]
        if before is None:
            break
    # Seven rows written in one transaction (often the same instant): each exactly once.
    assert sorted(seen) == list(range(7))
    family = await (await client.get(LOG, params={"action": "recording.", "target_id": str(target)})).json()
    assert len(family["entries"]) == 7
    later = (utcnow() + timedelta(hours=1)).isoformat()
    assert (await (await client.get(LOG, params={"since": later})).json())["entries"] == []


async def test_bad_filters_get_a_clear_422(
    client: TestClient[web.Request, web.Application], make_staff: Any
) -> None:
    await login(client, await make_staff(Role.ADMIN))
    for params in (
        {"before": "yesterday"},
        {"before": "2026-01-01T00:00:00_notauuid"},
        {"before": "2026-01-01T00:00:00_" + str(uuid.uuid4())},  # no time zone
        {"limit": "0"},
        {"limit": "100000"},
        {"action": "DROP TABLE"},
        {"actor": "me"},
        {"since": "2026-01-01T00:00:00"},
    ):
        answer = await client.get(LOG, params=params)
        assert answer.status == 422, params
        assert (await answer.json())["error"]["code"] == "validation_failed", params


async def test_queued_rows_are_bounded_and_survive_a_failed_write(db: Database) -> None:
    writer = audit.DeferredAudit(db, max_queued=3)
    for i in range(5):
        writer.record(actor=None, action="staff.login_failed", target_type="staff", target_id=i)
    assert writer.dropped == 2

    class Broken(Database):
        def transaction(self) -> Any:
            raise ConnectionRefusedError("database down")

    healthy, writer._db = writer._db, Broken.__new__(Broken)
    with pytest.raises(ConnectionRefusedError):
        await writer.flush()
    writer._db = healthy
    await writer.flush()
    assert (writer.written, await _count(db, "staff.login_failed")) == (3, 3)


async def test_each_row_names_its_actor_from_one_query_however_many_actors(
    client: TestClient[web.Request, web.Application], make_staff: Any, db: Database
) -> None:
    """The page shows who acted by name: the names come with the rows, in one query for the
    whole page (not one per actor), and a row whose actor was deleted names nobody."""
    admin = await make_staff(Role.ADMIN, display_name="Aoi Admin")
    target = uuid.uuid4()

    async def write(actors: list[uuid.UUID | None]) -> None:
        async with db.transaction() as session:
            for actor in actors:
                audit.record(
                    session, actor=actor, action="shopper.export", target_type="shopper", target_id=target
                )

    await login(client, admin)

    async def statements_for_one_page() -> tuple[int, list[dict[str, Any]]]:
        served = client.app[DB]
        with capture_sql(served.engine, served.read_engine) as captured:
            answer = await client.get(LOG, params={"target_id": str(target)})
            assert answer.status == 200
            page = await answer.json()
        selects = [sql for sql, _ in captured.statements if sql.lstrip().upper().startswith("SELECT")]
        return len(selects), page["entries"]

    await write([admin.id])
    few, entries = await statements_for_one_page()
    named = [(e["actor"]["display_name"], e["actor"]["email"]) for e in entries]
    assert named == [("Aoi Admin", admin.email)]

    others = [await make_staff(Role.SUPERVISOR, display_name=f"Sup {i}") for i in range(6)]
    gone = await make_staff(Role.ADVISOR, display_name="Gone Advisor")
    await write([o.id for o in others] + [gone.id, None])
    async with db.transaction() as session:
        await session.execute(delete(Staff).where(Staff.id == gone.id))
    many, entries = await statements_for_one_page()
    assert many == few, "the actors' names cost a query per actor"
    names = [e["actor"]["display_name"] if e["actor"] else None for e in entries]
    assert sorted(n for n in names if n) == sorted(["Aoi Admin"] + [f"Sup {i}" for i in range(6)])
    # The deleted account's row and the system's row: nobody named, the row kept.
    assert names.count(None) == 2
