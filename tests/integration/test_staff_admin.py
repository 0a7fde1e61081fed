"""The admin API for staff accounts and teams, over real HTTP, plus ``livedesk staff add``."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from sqlalchemy import select

from livedesk.__main__ import main as cli
from livedesk.kit.db import Database
from livedesk.kit.errors import Conflict
from livedesk.models import AuditEntry, Role, Staff, StaffSession
from livedesk.staff import service
from livedesk.staff.passwords import verify_password
from livedesk.staff.schemas import StaffUpdate
from tests.conftest import TEST_PASSWORD, StaffAccount, login

STAFF = "/api/v1/staff"
TEAMS = "/api/v1/teams"
ME = "/api/v1/auth/me"
LOGIN = "/api/v1/auth/login"

NEW_PASSWORD = "another long secret"


def new_staff(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": f"new-{uuid.uuid4().hex[:8]}@example.test",
        "password": "a long enough password",
        "role": "advisor",
        "display_name": "New Advisor",
    }
    body.update(fields)
    return body


@asynccontextmanager
async def browser(client: Any) -> AsyncIterator[Any]:
    """A second, independent browser (own cookie jar) talking to the same server. Typed Any:
    conftest's ``login`` is annotated for the TestClient but works with any aiohttp session."""
    async with aiohttp.ClientSession(
        base_url=client.make_url("/"), cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as session:
        yield session


async def audit(db: Database, action: str) -> list[AuditEntry]:
    async with db.read() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.at)
        )
        return list(rows)


async def session_count(db: Database, staff_id: uuid.UUID) -> int:
    async with db.read() as session:
        return len(
            list(await session.scalars(select(StaffSession.id).where(StaffSession.staff_id == staff_id)))
        )


async def load(db: Database, staff_id: uuid.UUID) -> Staff:
    async with db.read() as session:
        staff = await session.get(Staff, staff_id)
        assert staff is not None
        return staff


@pytest.fixture
async def admin(client: Any, make_staff: Any) -> tuple[StaffAccount, dict[str, str]]:
    """An admin signed in on ``client``, with the CSRF headers for writes."""
    account = await make_staff(Role.ADMIN)
    return account, await login(client, account)


# ---------------------------------------------------------------- creating accounts


async def test_admin_creates_an_account_that_can_sign_in(
    client: Any, admin: tuple[StaffAccount, dict[str, str]], db: Database
) -> None:
    actor, headers = admin
    body = new_staff(
        email="Hanako.Sato@Example.TEST",
        skills=["Kimono", "gift-wrap", "kimono"],
        languages=["JA", "en", "pt-br"],
        timezone="Asia/Tokyo",
        photo_url="/media/hanako.jpg",
        bio="Ten years in the Ginza store.",
    )
    response = await client.post(STAFF, json=body, headers=headers)
    assert response.status == 201, await response.text()
    created = await response.json()
    assert response.headers["Location"] == f"{STAFF}/{created['id']}"
    assert created["email"] == "hanako.sato@example.test"
    assert created["skills"] == ["kimono", "gift-wrap"]
    assert created["languages"] == ["ja", "en", "pt-BR"]
    assert created["timezone"] == "Asia/Tokyo"
    assert created["active"] is True
    assert created["nominable"] is True
    assert "password" not in created
    assert "password_hash" not in created

    stored = await load(db, uuid.UUID(created["id"]))
    assert stored.password_hash.startswith("$argon2id$")
    assert verify_password(stored.password_hash, body["password"])

    (entry,) = await audit(db, "staff.created")
    assert entry.actor_staff_id == actor.id
    assert entry.target_type == "staff"
    assert entry.target_id == created["id"]
    assert "password" not in str(entry.details)

    async with browser(client) as other:
        signed_in = await other.post(
            LOGIN, json={"email": "HANAKO.SATO@example.test", "password": body["password"]}
        )
        assert signed_in.status == 200
        assert (await signed_in.json())["role"] == "advisor"


async def test_duplicate_email_is_a_conflict(
    client: Any, admin: tuple[StaffAccount, dict[str, str]], make_staff: Any
) -> None:
    _, headers = admin
    existing = await make_staff(Role.ADVISOR, email="taken@example.test")
    response = await client.post(STAFF, json=new_staff(email="Taken@Example.test"), headers=headers)
    assert response.status == 409
    error = (await response.json())["error"]
    assert error["code"] == "email_taken"
    assert existing.email in error["message"]

    other = await make_staff(Role.ADVISOR)
    renamed = await client.patch(f"{STAFF}/{other.id}", json={"email": "TAKEN@example.test"}, headers=headers)
    assert renamed.status == 409


BAD_INPUT: list[tuple[str, dict[str, Any], str]] = [
    ("unknown field", {"nickname": "Hana"}, "nickname"),
    ("wrong type", {"nominable": "perhaps"}, "nominable"),
    ("wrong list type", {"skills": "kimono"}, "skills"),
    ("bad time zone", {"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ("bad e-mail", {"email": "not-an-address"}, "email"),
    ("short password", {"password": "short"}, "password"),
    ("unknown role", {"role": "owner"}, "role"),
    ("empty display name", {"display_name": "   "}, "display_name"),
    ("skill not a slug", {"skills": ["gift wrap!"]}, "skills"),
    ("language not a tag", {"languages": ["Japanese"]}, "languages"),
    ("photo on another scheme", {"photo_url": "javascript:alert(1)"}, "photo_url"),
    ("photo protocol-relative", {"photo_url": "//evil.example/x.png"}, "photo_url"),
    ("unknown team", {"team_id": str(uuid.uuid4())}, "team_id"),
]


@pytest.mark.parametrize(("fields", "field"), [case[1:] for case in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
async def test_bad_input_is_422_naming_the_field(
    client: Any, admin: tuple[StaffAccount, dict[str, str]], db: Database, fields: dict[str, Any], field: str
) -> None:
    _, headers = admin
    response = await client.post(STAFF, json=new_staff(**fields), headers=headers)
    assert response.status == 422, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "validation_failed"
    assert error["details"][0]["field"] == field
    assert f"'{field}'" in error["message"]
    async with db.read() as session:
        assert list(await session.scalars(select(Staff.email).where(Staff.email.like("new-%")))) == []


async def test_patch_bad_input_is_422(
    client: Any, admin: tuple[StaffAccount, dict[str, str]], make_staff: Any
) -> None:
    _, headers = admin
    target = await make_staff(Role.ADVISOR)
    for body, field in [
        ({"display_name": None}, "display_name"),
        ({"timezone": "Nowhere/Town"}, "timezone"),
        ({"password_hash": "x"}, "password_hash"),
        ({"team_id": str(uuid.uuid4())}, "team_id"),
    ]:
        response = await client.patch(f"{STAFF}/{target.id}", json=body, headers=headers)
        assert response.status == 422, (body, await response.text())
        error = (await response.json())["error"]
        assert field in error["message"], error
    not_an_id = await client.get(f"{STAFF}/not-a-uuid")
    assert not_an_id.status == 422
    assert (await not_an_id.json())["error"]["details"][0]["field"] == "staff_id"
    missing = await client.get(f"{STAFF}/{uuid.uuid4()}")
    assert missing.status == 404
    assert (await client.patch(f"{STAFF}/{uuid.uuid4()}", json={}, headers=headers)).status == 404


# ---------------------------------------------------------------- reading


async def test_list_filters_and_orders_by_display_name(
    client: Any, admin: tuple[StaffAccount, dict[str, str]], make_staff: Any
) -> None:
    actor, headers = admin
    team = await (await client.post(TEAMS, json={"name": "Kimono"}, headers=headers)).json()
    yuki = await make_staff(Role.ADVISOR, display_name="yuki", team_id=uuid.UUID(team["id"]))
    aiko = await make_staff(Role.ADVISOR, display_name="Aiko", team_id=uuid.UUID(team["id"]))
    ken = await make_staff(Role.SUPERVISOR, display_name="Ken")
    gone = await make_staff(Role.ADVISOR, display_name="Bunta", active=False)

    async def names(query: str = "") -> list[str]:
        response = await client.get(STAFF + query)
        assert response.status == 200, await response.text()
        return [row["id"] for row in await response.json()]

    everyone = await client.get(STAFF)
    rows = await everyone.json()
    assert all("password_hash" not in row for row in rows)
    by_name = [row["display_name"] for row in rows]
    assert by_name == sorted(by_name, key=str.lower)
    assert set(await names()) == {str(s.id) for s in (actor, yuki, aiko, ken, gone)}

    assert await names("?role=advisor") == [str(aiko.id), str(gone.id), str(yuki.id)]
    assert await names(f"?team_id={team['id']}") == [str(aiko.id), str(yuki.id)]
    assert await names("?role=advisor&active=true") == [str(aiko.id), str(yuki.id)]
    assert await names("?active=false") == [str(gone.id)]
    assert (await client.get(STAFF + "?role=owner")).status == 422

    one = await client.get(f"{STAFF}/{ken.id}")
    assert one.status == 200
    assert (await one.json())["role"] == "supervisor"


# ---------------------------------------------------------------- changing accounts


async def test_update_changes_profile_without_ending_sessions(
    client: Any, admin: tuple[StaffAccount, dict[str, str]], make_staff: Any, db: Database
) -> None:
    actor, headers = admin
    target = await make_staff(Role.ADVISOR)
    team = await (await client.post(TEAMS, json={"name": "Beauty"}, headers=headers)).json()
    async with browser(client) as other:
        await login(other, target)
        response = await client.patch(
            f"{STAFF}/{target.id}",
            json={"display_name": "Mika", "team_id": team["id"], "nominable": False, "skills": ["makeup"]},
            headers=headers,
        )
        assert response.status == 200, await response.text()
        body = await response.json()
        assert (body["display_name"], body["team_id"], body["nominable"], body["skills"]) == (
            "Mika",
            team["id"],
            False,
            ["makeup"],
        )
        # A profile edit takes nothing away: the advisor stays signed in.
        assert (await other.get(ME)).status == 200

        cleared = await client.patch(f"{STAFF}/{target.id}", json={"team_id": None}, headers=headers)
        assert (await cleared.json())["team_id"] is None
        assert (await client.patch(f"{STAFF}/{target.id}", json={}, headers=headers)).status == 200

    entries = await audit(db, "staff.updated")
    assert [e.details["changed"] for e in entries] == [
        ["display_name", "nominable", "skills", "team_id"],
        ["team_id"],
    ]
    assert all(e.actor_staff_id == actor.id for e in entries)


@pytest.mark.parametrize(
    "change",
    [{"password": NEW_PASSWORD}, {"role": "supervisor"}, {"active": False}],
    ids=["password", "role", "active"],
)
async def test_password_role_or_disable_ends_the_accounts_sessions(
    client: Any,
    admin: tuple[StaffAccount, dict[str, str]],
    make_staff: Any,
    db: Database,
    change: dict[str, Any],
) -> None:
    _, headers = admin
    target = await make_staff(Role.ADVISOR)
    async with browser(client) as first, browser(client) as second:
        await login(first, target)
        await login(second, target)
        assert await session_count(db, target.id) == 2

        response = await client.patch(f"{STAFF}/{target.id}", json=change, headers=headers)
        assert response.status == 200, await response.text()

        assert await session_count(db, target.id) == 0
        assert (await first.get(ME)).status == 401
        assert (await second.get(ME)).status == 401
    # The admin's own session is untouched.
    assert (await client.get(ME)).status == 200


async def test_admin_sets_a_new_password(
    client: Any, admin: tuple[StaffAccount, dict[str, str]], make_staff: Any
) -> None:
    _, headers = admin
    target = await make_staff(Role.ADVISOR)
    response = await client.patch(f"{STAFF}/{target.id}", json={"password": NEW_PASSWORD}, headers=headers)
    assert response.status == 200
    async with browser(client) as other:
        assert (
            await other.post(LOGIN, json={"email": target.email, "password": TEST_PASSWORD})
        ).status == 401
        assert (await other.post(LOGIN, json={"email": target.email, "password": NEW_PASSWORD})).status == 200


async def test_disable_ends_sessions_at_once_and_blocks_sign_in(
    client: Any, admin: tuple[StaffAccount, dict[str, str]], make_staff: Any, db: Database
) -> None:
    actor, headers = admin
    target = await make_staff(Role.SUPERVISOR)
    async with browser(client) as other:
        await login(other, target)
        assert (await other.get(ME)).status == 200

        response = await client.post(f"{STAFF}/{target.id}/disable", headers=headers)
        assert response.status == 200, await response.text()
        assert (await response.json())["active"] is False

        assert (await other.get(ME)).status == 401
        assert await session_count(db, target.id) == 0
        refused = await other.post(LOGIN, json={"email": target.email, "password": TEST_PASSWORD})
        assert refused.status == 401

        enabled = await client.patch(f"{STAFF}/{target.id}", json={"active": True}, headers=headers)
        assert (await enabled.json())["active"] is True
        await login(other, target)

    (disabled,) = await audit(db, "staff.disabled")
    assert disabled.actor_staff_id == actor.id
    assert disabled.target_id == str(target.id)
    assert disabled.details["active"] == {"from": True, "to": False}
    assert len(await audit(db, "staff.enabled")) == 1


async def test_admin_cannot_disable_or_demote_themselves(
    client: Any, admin: tuple[StaffAccount, dict[str, str]], make_staff: Any, db: Database
) -> None:
    actor, headers = admin
    await make_staff(Role.ADMIN)  # another admin exists: the refusal is about oneself
    for response in [
        await client.post(f"{STAFF}/{actor.id}/disable", headers=headers),
        await client.patch(f"{STAFF}/{actor.id}", json={"active": False}, headers=headers),
        await client.patch(f"{STAFF}/{actor.id}", json={"role": "supervisor"}, headers=headers),
    ]:
        assert response.status == 409
        error = (await response.json())["error"]
        assert error["code"] == "own_account"
        assert "your own" in error["message"]
    me = await load(db, actor.id)
    assert (me.role, me.active) == (Role.ADMIN, True)
    assert (await client.get(ME)).status == 200
    # Editing one's own profile is fine.
    renamed = await client.patch(f"{STAFF}/{actor.id}", json={"display_name": "Chief"}, headers=headers)
    assert renamed.status == 200


async def test_the_last_active_admin_cannot_be_removed(db: Database, make_staff: Any) -> None:
    # Over HTTP the actor is always another active admin; the rule still holds for any caller.
    only = await make_staff(Role.ADMIN)
    await make_staff(Role.ADMIN, active=False)
    for change in (StaffUpdate(role=Role.ADVISOR), StaffUpdate(active=False)):
        with pytest.raises(Conflict) as raised:
            async with db.transaction() as session:
                await service.update_staff(session, only.id, change, actor_id=None)
        assert raised.value.code == "last_admin"
    assert (await load(db, only.id)).role == Role.ADMIN


async def test_two_admins_disabling_each_other_leaves_one(client: Any, make_staff: Any, db: Database) -> None:
    first, second = await make_staff(Role.ADMIN), await make_staff(Role.ADMIN)
    async with browser(client) as a, browser(client) as b:
        headers_a, headers_b = await login(a, first), await login(b, second)
        responses = await asyncio.gather(
            a.post(f"{STAFF}/{second.id}/disable", headers=headers_a),
            b.post(f"{STAFF}/{first.id}/disable", headers=headers_b),
        )
        statuses = sorted(r.status for r in responses)
    assert statuses[0] == 200
    assert statuses[1] in {401, 409}
    async with db.read() as session:
        admins = list(await session.scalars(select(Staff.id).where(Staff.role == Role.ADMIN, Staff.active)))
    assert len(admins) == 1


# ---------------------------------------------------------------- teams


async def test_team_lifecycle(
    client: Any, admin: tuple[StaffAccount, dict[str, str]], make_staff: Any, db: Database
) -> None:
    actor, headers = admin
    created = await client.post(TEAMS, json={"name": "Kimono", "description": "Formal wear"}, headers=headers)
    assert created.status == 201
    team = await created.json()
    assert (team["name"], team["member_count"]) == ("Kimono", 0)

    duplicate = await client.post(TEAMS, json={"name": "KIMONO"}, headers=headers)
    assert duplicate.status == 409
    assert (await duplicate.json())["error"]["code"] == "team_name_taken"
    await client.post(TEAMS, json={"name": "accessories"}, headers=headers)

    member = await make_staff(Role.ADVISOR, team_id=uuid.UUID(team["id"]))
    listed = await (await client.get(TEAMS)).json()
    assert [(t["name"], t["member_count"]) for t in listed] == [("accessories", 0), ("Kimono", 1)]

    renamed = await client.patch(f"{TEAMS}/{team['id']}", json={"name": "Kimono & Yukata"}, headers=headers)
    assert renamed.status == 200
    assert (await renamed.json())["member_count"] == 1
    clash = await client.patch(f"{TEAMS}/{team['id']}", json={"name": "Accessories"}, headers=headers)
    assert clash.status == 409

    busy = await client.delete(f"{TEAMS}/{team['id']}", headers=headers)
    assert busy.status == 409
    error = (await busy.json())["error"]
    assert (error["code"], error["details"]["member_count"]) == ("team_not_empty", 1)

    await client.patch(f"{STAFF}/{member.id}", json={"team_id": None}, headers=headers)
    deleted = await client.delete(f"{TEAMS}/{team['id']}", headers=headers)
    assert deleted.status == 204
    assert [t["name"] for t in await (await client.get(TEAMS)).json()] == ["accessories"]
    assert (await client.delete(f"{TEAMS}/{team['id']}", headers=headers)).status == 404
    assert (await client.patch(f"{TEAMS}/{team['id']}", json={}, headers=headers)).status == 404

    for action in ("team.created", "team.updated", "team.deleted"):
        entries = await audit(db, action)
        assert entries, action
        assert all(e.actor_staff_id == actor.id and e.target_type == "team" for e in entries)


# ---------------------------------------------------------------- who may do what

ANY_ID = "00000000-0000-4000-8000-000000000000"
WRITES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", STAFF, new_staff()),
    ("PATCH", f"{STAFF}/{{target}}", {"display_name": "Hacked"}),
    ("POST", f"{STAFF}/{{target}}/disable", None),
    ("POST", TEAMS, {"name": "Rogue"}),
    ("PATCH", f"{TEAMS}/{ANY_ID}", {"name": "Rogue"}),
    ("DELETE", f"{TEAMS}/{ANY_ID}", None),
]
READS = [STAFF, f"{STAFF}/{{target}}", TEAMS]


@pytest.mark.parametrize("role", [Role.ADVISOR, Role.SUPERVISOR])
async def test_non_admins_cannot_write(client: Any, make_staff: Any, db: Database, role: Role) -> None:
    target = await make_staff(Role.ADVISOR, display_name="Target")
    headers = await login(client, await make_staff(role))
    for method, path, body in WRITES:
        response = await client.request(method, path.format(target=target.id), json=body, headers=headers)
        assert response.status == 403, (method, path, await response.text())
        assert (await response.json())["error"]["code"] == "forbidden"
    # Refused before the body is read: an invalid body gets 403 too, not a schema lesson.
    invalid = await client.post(STAFF, json={"bogus": 1}, headers=headers)
    assert invalid.status == 403
    unchanged = await load(db, target.id)
    assert (unchanged.display_name, unchanged.active) == ("Target", True)


async def test_supervisor_reads_advisor_does_not(client: Any, make_staff: Any) -> None:
    target = await make_staff(Role.ADVISOR)
    await login(client, await make_staff(Role.SUPERVISOR))
    for path in READS:
        assert (await client.get(path.format(target=target.id))).status == 200, path
    await login(client, await make_staff(Role.ADVISOR))
    for path in READS:
        response = await client.get(path.format(target=target.id))
        assert response.status == 403, path


async def test_anonymous_gets_401_everywhere(client: Any, make_staff: Any) -> None:
    target = await make_staff(Role.ADVISOR)
    for method, path, body in [*WRITES, *[("GET", p, None) for p in READS]]:
        response = await client.request(method, path.format(target=target.id), json=body)
        assert response.status == 401, (method, path)
        assert (await response.json())["error"]["code"] == "unauthenticated"
    assert (await client.post(STAFF, json={"bogus": 1})).status == 401


async def test_admin_routes_are_in_the_openapi_document(client: Any) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    paths = spec["paths"]
    assert {"get", "post"} <= set(paths[STAFF])
    assert {"get", "patch"} <= set(paths[STAFF + "/{staff_id}"])
    assert "post" in paths[STAFF + "/{staff_id}/disable"]
    assert {"get", "post"} <= set(paths[TEAMS])
    assert {"patch", "delete"} <= set(paths[TEAMS + "/{team_id}"])
    assert "patch" in paths["/api/v1/auth/me/password"]
    staff_out = spec["components"]["schemas"]["StaffOut"]["properties"]
    assert "password_hash" not in staff_out
    assert "password" not in staff_out
    create = spec["components"]["schemas"]["StaffCreate"]
    assert create["additionalProperties"] is False
    assert {"email", "password", "role", "display_name"} <= set(create["required"])


# ---------------------------------------------------------------- the command line


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> Iterator[None]:
    """Point the CLI at the test database, and put back the logging it reconfigures."""
    monkeypatch.setenv("LIVEDESK_DATABASE_URL", database_url)
    monkeypatch.setenv("LIVEDESK_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("LIVEDESK_LOG_LEVEL", "warning")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


async def test_cli_staff_add_creates_an_admin_who_can_sign_in(
    client: Any, cli_env: None, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    email = "Owner@Example.test"
    password = "first admin password"
    # The CLI runs its own event loop (asyncio.run), so it goes to a thread.
    await asyncio.to_thread(cli, ["staff", "add", email, "--role", "admin", "--password", password])
    assert "created admin" in capsys.readouterr().out

    response = await client.post(LOGIN, json={"email": "owner@example.test", "password": password})
    assert response.status == 200, await response.text()
    assert (await response.json())["role"] == "admin"
    headers = {"X-CSRF-Token": (await response.json())["csrf_token"]}
    assert (await client.post(TEAMS, json={"name": "First team"}, headers=headers)).status == 201

    (entry,) = await audit(db, "staff.created")
    assert entry.actor_staff_id is None
    assert entry.details["via"] == "cli"

    with pytest.raises(SystemExit, match="already exists"):
        await asyncio.to_thread(cli, ["staff", "add", "owner@example.test", "--password", password])
    with pytest.raises(SystemExit, match="password"):
        await asyncio.to_thread(cli, ["staff", "add", "x@example.test", "--password", "short"])
