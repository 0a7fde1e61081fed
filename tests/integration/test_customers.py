"""Shopper profiles over the real app and database: create, conflicts, update, identity
resolution, merge, permissions and validation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from livedesk.customers import service
from livedesk.customers.schemas import ShopperCreate
from livedesk.kit.db import Database
from livedesk.kit.errors import ValidationFailed
from livedesk.models import (
    AuditEntry,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    IdentityKind,
    OrderChannel,
    Role,
    ShopOrder,
    Shopper,
    ShopperIdentity,
    ShopperMerge,
    TimelineEvent,
    TimelineKind,
)
from livedesk.timeline import append_event
from tests.conftest import login

API = "/api/v1/shoppers"


async def make_shopper(db: Database, **fields: Any) -> uuid.UUID:
    """A profile made through the service, as other capabilities will make them."""
    fields.setdefault("display_name", "Shopper")
    async with db.transaction() as session:
        view = await service.create_shopper(session, ShopperCreate(**fields))
    return view.shopper.id


async def identities_of(db: Database, shopper_id: uuid.UUID) -> set[tuple[str, str]]:
    async with db.read() as session:
        rows = await session.execute(
            select(ShopperIdentity.kind, ShopperIdentity.value).where(
                ShopperIdentity.shopper_id == shopper_id
            )
        )
        return {(kind.value, value) for kind, value in rows}


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture
async def advisor(client: Any, make_staff: Any) -> dict[str, str]:
    return await login(client, await make_staff(Role.ADVISOR))


@pytest.fixture
async def supervisor(client: Any, make_staff: Any) -> dict[str, str]:
    return await login(client, await make_staff(Role.SUPERVISOR))


# --- create ------------------------------------------------------------------------------


async def test_create_normalises_identities_and_records_the_event(
    client: Any, db: Database, advisor: dict[str, str]
) -> None:
    response = await client.post(
        API,
        json={
            "display_name": "Hana Sato",
            "email": "  Hana.Sato@Example.COM ",
            "phone": "090-1234-5678",
            "shop_customer_id": " C-1001 ",
            "locale": "en",
            "timezone": "Europe/Paris",
            "attributes": {"skin": "dry", "vip": True},
        },
        headers=advisor,
    )
    assert response.status == 201, await response.text()
    body = await response.json()
    shopper_id = uuid.UUID(body["id"])
    assert response.headers["Location"] == f"{API}/{shopper_id}"
    assert body["email"] == "hana.sato@example.com"
    assert body["phone"] == "+819012345678"
    assert (body["locale"], body["timezone"]) == ("en", "Europe/Paris")
    assert body["attributes"] == {"skin": "dry", "vip": True}
    assert body["merged_into"] is None
    assert {(i["kind"], i["value"]) for i in body["identities"]} == {
        ("email", "hana.sato@example.com"),
        ("phone", "+819012345678"),
        ("shop_customer_id", "C-1001"),
    }
    assert await identities_of(db, shopper_id) == {
        ("email", "hana.sato@example.com"),
        ("phone", "+819012345678"),
        ("shop_customer_id", "C-1001"),
    }
    async with db.read() as session:
        events = (
            await session.scalars(select(TimelineEvent).where(TimelineEvent.shopper_id == shopper_id))
        ).all()
    assert [e.kind for e in events] == [TimelineKind.PROFILE_CREATED]
    assert events[0].data["source"] == "api"
    assert events[0].actor_staff_id is not None

    fetched = await client.get(f"{API}/{shopper_id}")
    assert fetched.status == 200
    assert await fetched.json() == body


async def test_create_without_identities_uses_defaults(client: Any, advisor: dict[str, str]) -> None:
    response = await client.post(API, json={"display_name": "Walk-in"}, headers=advisor)
    assert response.status == 201
    body = await response.json()
    assert (body["locale"], body["timezone"], body["identities"]) == ("ja", "Asia/Tokyo", [])


@pytest.mark.parametrize(
    ("taken", "again", "kind", "stored"),
    [
        ({"email": "hana@example.com"}, {"email": "HANA@Example.com "}, "email", "hana@example.com"),
        ({"phone": "090-1234-5678"}, {"phone": "+81 90 1234 5678"}, "phone", "+819012345678"),
        ({"shop_customer_id": "C-7"}, {"shop_customer_id": "  C-7 "}, "shop_customer_id", "C-7"),
    ],
)
async def test_create_conflict_names_identity_and_owner(
    client: Any,
    db: Database,
    advisor: dict[str, str],
    taken: dict[str, str],
    again: dict[str, str],
    kind: str,
    stored: str,
) -> None:
    owner = await make_shopper(db, **taken)
    before = await count(db, Shopper)
    response = await client.post(
        API, json={"display_name": "Someone", "email": "fresh@example.com", **again}, headers=advisor
    )
    assert response.status == 409, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "identity_conflict"
    assert stored in error["message"]
    assert str(owner) in error["message"]
    assert error["details"] == {"field": kind, "kind": kind, "value": stored, "shopper_id": str(owner)}
    # Nothing of the refused profile was written.
    assert await count(db, Shopper) == before
    assert await count(db, ShopperIdentity, ShopperIdentity.value == "fresh@example.com") == 0


async def test_concurrent_creates_of_one_identity_make_one_profile(
    client: Any, db: Database, advisor: dict[str, str]
) -> None:
    responses = await asyncio.gather(
        *(
            client.post(API, json={"display_name": f"Twin {n}", "email": "twin@example.com"}, headers=advisor)
            for n in range(6)
        )
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [201, 409, 409, 409, 409, 409]
    for response in responses:
        if response.status == 409:
            assert (await response.json())["error"]["code"] == "identity_conflict"
    assert await count(db, ShopperIdentity, ShopperIdentity.value == "twin@example.com") == 1


async def test_concurrent_resolves_of_a_new_person_find_one_profile(
    client: Any, db: Database, advisor: dict[str, str]
) -> None:
    # Two tabs booking for the same new shopper at once: both must end up with one person,
    # not one of them with an error.
    responses = await asyncio.gather(
        *(
            client.post(
                f"{API}/resolve",
                json={"email": "Same@Example.com", "display_name": f"Tab {n}"},
                headers=advisor,
            )
            for n in range(6)
        )
    )
    assert sorted(r.status for r in responses) == [200, 200, 200, 200, 200, 201]
    ids = {(await r.json())["shopper"]["id"] for r in responses}
    assert len(ids) == 1
    assert await count(db, Shopper) == 1
    assert await count(db, TimelineEvent, TimelineEvent.kind == TimelineKind.PROFILE_CREATED) == 1


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"display_name": "A", "favourite_colour": "red"}, "favourite_colour"),
        ({"display_name": "A", "phone": "12345"}, "phone"),
        ({"display_name": "A", "phone": "call me"}, "phone"),
        ({"display_name": "A", "phone": "090-1234-5678", "phone_region": "Japan"}, "phone_region"),
        ({"display_name": "A", "email": "not-an-address"}, "email"),
        ({"display_name": "A", "email": "hana@localhost"}, "email"),
        ({"display_name": "A", "timezone": "Tokyo"}, "timezone"),
        ({"display_name": "A", "locale": "japanese"}, "locale"),
        ({"display_name": "A", "shop_customer_id": "   "}, "shop_customer_id"),
        ({"display_name": "A", "attributes": {"": 1}}, "attributes"),
        ({"email": "a@example.com"}, "display_name"),
    ],
)
async def test_create_validation_names_the_field(
    client: Any, db: Database, advisor: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = await client.post(API, json=body, headers=advisor)
    assert response.status == 422, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "validation_failed"
    assert f"'{field}'" in error["message"]
    assert await count(db, Shopper) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"display_name": None}, "display_name"),
        ({"timezone": "Nowhere/Land"}, "timezone"),
        ({"email": "nope"}, "email"),
        ({"phone": "0"}, "phone"),
        ({"id": str(uuid.uuid4())}, "id"),
    ],
)
async def test_update_validation_names_the_field(
    client: Any, db: Database, advisor: dict[str, str], body: dict[str, Any], field: str
) -> None:
    shopper_id = await make_shopper(db, email="keep@example.com")
    response = await client.patch(f"{API}/{shopper_id}", json=body, headers=advisor)
    assert response.status == 422, await response.text()
    assert f"'{field}'" in (await response.json())["error"]["message"]
    assert await identities_of(db, shopper_id) == {("email", "keep@example.com")}


async def test_bad_shopper_id_in_path_is_422(client: Any, advisor: dict[str, str]) -> None:
    response = await client.get(f"{API}/not-a-uuid")
    assert response.status == 422
    assert "'shopper_id'" in (await response.json())["error"]["message"]


async def test_unknown_shopper_is_404(client: Any, advisor: dict[str, str]) -> None:
    unknown = uuid.uuid4()
    for response in (
        await client.get(f"{API}/{unknown}"),
        await client.patch(f"{API}/{unknown}", json={"notes": "x"}, headers=advisor),
        await client.get(f"{API}/{unknown}/timeline"),
    ):
        assert response.status == 404
        error = (await response.json())["error"]
        assert error["code"] == "shopper_not_found"
        assert str(unknown) in error["message"]


# --- update ------------------------------------------------------------------------------


async def test_patch_changes_only_what_was_sent(client: Any, db: Database, advisor: dict[str, str]) -> None:
    shopper_id = await make_shopper(
        db,
        display_name="Hana",
        email="hana@example.com",
        phone="090-1234-5678",
        shop_customer_id="C-1",
        attributes={"skin": "dry", "size": "M"},
    )
    response = await client.patch(
        f"{API}/{shopper_id}",
        json={"display_name": "Hana Sato", "attributes": {"size": None, "vip": True}, "timezone": "UTC"},
        headers=advisor,
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["display_name"] == "Hana Sato"
    assert body["timezone"] == "UTC"
    assert body["locale"] == "ja"
    # Attributes are merged key by key; null removes a key.
    assert body["attributes"] == {"skin": "dry", "vip": True}
    assert body["email"] == "hana@example.com"
    assert await identities_of(db, shopper_id) == {
        ("email", "hana@example.com"),
        ("phone", "+819012345678"),
        ("shop_customer_id", "C-1"),
    }


async def test_patch_replaces_identities_of_that_kind(
    client: Any, db: Database, advisor: dict[str, str]
) -> None:
    shopper_id = await make_shopper(
        db, email="old@example.com", phone="090-1234-5678", shop_customer_id="C-1"
    )
    response = await client.patch(
        f"{API}/{shopper_id}",
        json={"email": "New@Example.com", "phone": None, "shop_customer_id": "C-1"},
        headers=advisor,
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["email"], body["phone"]) == ("new@example.com", None)
    assert await identities_of(db, shopper_id) == {("email", "new@example.com"), ("shop_customer_id", "C-1")}
    # The old address is free again: it now finds nobody, and someone else may take it.
    async with db.transaction() as session:
        found = await service.resolve_shopper(session, email="old@example.com", create=False)
    assert found.view is None
    other = await make_shopper(db, email="old@example.com")
    assert other != shopper_id


async def test_patch_conflict_leaves_profile_unchanged(
    client: Any, db: Database, advisor: dict[str, str]
) -> None:
    owner = await make_shopper(db, email="taken@example.com")
    shopper_id = await make_shopper(db, display_name="Ken", email="ken@example.com")
    response = await client.patch(
        f"{API}/{shopper_id}", json={"display_name": "Kenji", "email": "TAKEN@example.com"}, headers=advisor
    )
    assert response.status == 409
    error = (await response.json())["error"]
    assert "taken@example.com" in error["message"]
    assert str(owner) in error["message"]
    fetched = await (await client.get(f"{API}/{shopper_id}")).json()
    assert (fetched["display_name"], fetched["email"]) == ("Ken", "ken@example.com")
    assert await identities_of(db, shopper_id) == {("email", "ken@example.com")}


# --- resolution --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("known", "asked", "kind"),
    [
        ({"email": "hana@example.com"}, {"email": " HANA@example.COM"}, IdentityKind.EMAIL),
        ({"phone": "090-1234-5678"}, {"phone": "+81 90 1234 5678"}, IdentityKind.PHONE),
        ({"phone": "+81 90 1234 5678"}, {"phone": "09012345678"}, IdentityKind.PHONE),
        ({"shop_customer_id": "C-1001"}, {"shop_customer_id": " C-1001 "}, IdentityKind.SHOP_CUSTOMER_ID),
    ],
)
async def test_resolve_finds_the_same_person(
    db: Database, known: dict[str, str], asked: dict[str, str], kind: IdentityKind
) -> None:
    shopper_id = await make_shopper(db, **known)
    async with db.transaction() as session:
        found = await service.resolve_shopper(session, **asked)
    assert found.view is not None
    assert found.view.shopper.id == shopper_id
    assert (found.created, found.matched_by, found.conflict, found.attached) == (False, (kind,), False, [])
    assert await count(db, Shopper) == 1


async def test_resolve_creates_a_new_person(client: Any, db: Database, advisor: dict[str, str]) -> None:
    response = await client.post(
        f"{API}/resolve",
        json={"email": "New@Example.com", "phone": "090-2222-3333", "display_name": "New", "timezone": "UTC"},
        headers=advisor,
    )
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["created"] is True
    assert body["conflict"] is False
    assert body["matched_by"] == []
    shopper = body["shopper"]
    assert (shopper["display_name"], shopper["email"], shopper["phone"], shopper["timezone"]) == (
        "New",
        "new@example.com",
        "+819022223333",
        "UTC",
    )
    assert {(i["kind"], i["value"]) for i in body["attached"]} == {
        ("email", "new@example.com"),
        ("phone", "+819022223333"),
    }
    shopper_id = uuid.UUID(shopper["id"])
    assert await count(db, TimelineEvent, TimelineEvent.kind == TimelineKind.PROFILE_CREATED) == 1

    # Asking again, written differently, finds them instead of making a second profile.
    again = await client.post(f"{API}/resolve", json={"phone": "+81 90 2222 3333"}, headers=advisor)
    assert again.status == 200
    assert (await again.json())["shopper"]["id"] == str(shopper_id)
    assert await count(db, Shopper) == 1


async def test_resolve_attaches_missing_identities(db: Database) -> None:
    async with db.transaction() as session:
        # Shop import knows only the shop's id at first: a profile without a name.
        first = await service.resolve_shopper(session, shop_customer_id="C-9", source="import")
    assert first.view is not None
    assert first.created
    shopper_id = first.view.shopper.id
    assert first.view.shopper.display_name == ""
    async with db.transaction() as session:
        found = await service.resolve_shopper(
            session,
            shop_customer_id="C-9",
            email="Nine@Example.com",
            phone="090-9999-0000",
            display_name="Kyu",
        )
    assert found.view is not None
    assert found.view.shopper.id == shopper_id
    assert found.matched_by == (IdentityKind.SHOP_CUSTOMER_ID,)
    assert {(i.kind, i.value) for i in found.attached} == {
        (IdentityKind.EMAIL, "nine@example.com"),
        (IdentityKind.PHONE, "+819099990000"),
    }
    # Blanks are filled from what was given.
    assert (found.view.shopper.email, found.view.shopper.phone, found.view.shopper.display_name) == (
        "nine@example.com",
        "+819099990000",
        "Kyu",
    )
    async with db.transaction() as session:
        by_email = await service.resolve_shopper(session, email="nine@example.com", create=False)
    assert by_email.view is not None
    assert by_email.view.shopper.id == shopper_id


async def test_resolve_keeps_an_existing_name(db: Database) -> None:
    shopper_id = await make_shopper(db, display_name="Hana", email="hana@example.com")
    async with db.transaction() as session:
        found = await service.resolve_shopper(session, email="hana@example.com", display_name="H. Sato")
    assert found.view is not None
    assert found.view.shopper.display_name == "Hana"
    assert found.view.shopper.id == shopper_id


@pytest.mark.parametrize(
    ("a_has", "b_has", "asked", "winner"),
    [
        # e-mail beats phone
        (
            {"email": "a@example.com"},
            {"phone": "090-1111-2222"},
            {"email": "a@example.com", "phone": "09011112222"},
            "a",
        ),
        (
            {"phone": "090-1111-2222"},
            {"email": "b@example.com"},
            {"email": "b@example.com", "phone": "09011112222"},
            "b",
        ),
        # shop id beats e-mail
        (
            {"email": "a@example.com"},
            {"shop_customer_id": "S-2"},
            {"email": "a@example.com", "shop_customer_id": "S-2"},
            "b",
        ),
    ],
)
async def test_resolve_reports_conflicting_identities(
    client: Any,
    db: Database,
    advisor: dict[str, str],
    a_has: dict[str, str],
    b_has: dict[str, str],
    asked: dict[str, str],
    winner: str,
) -> None:
    ids = {"a": await make_shopper(db, **a_has), "b": await make_shopper(db, **b_has)}
    loser = "b" if winner == "a" else "a"
    response = await client.post(f"{API}/resolve", json=asked, headers=advisor)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["shopper"]["id"] == str(ids[winner])
    assert body["conflict"] is True
    assert body["created"] is False
    assert body["attached"] == []
    assert {c["shopper_id"] for c in body["candidates"]} == {str(ids["a"]), str(ids["b"])}
    assert body["candidates"][0]["shopper_id"] == str(ids[winner])
    # Nothing merged, nothing moved: each keeps exactly what it had.
    assert await identities_of(db, ids["a"]) == await _expected(a_has)
    assert await identities_of(db, ids["b"]) == await _expected(b_has)
    async with db.read() as session:
        assert (await session.get(Shopper, ids[loser])) is not None
        assert (await session.get(Shopper, ids[loser])).merged_into_id is None  # type: ignore[union-attr]
    assert await count(db, ShopperMerge) == 0


async def _expected(fields: dict[str, str]) -> set[tuple[str, str]]:
    normalised = service.normalize_identities(**fields)
    return {(kind.value, value) for kind, value in normalised.items()}


async def test_resolve_without_create_is_404_when_unknown(
    client: Any, db: Database, advisor: dict[str, str]
) -> None:
    response = await client.post(
        f"{API}/resolve", json={"email": "ghost@example.com", "create": False}, headers=advisor
    )
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "shopper_not_found"
    assert await count(db, Shopper) == 0


async def test_resolve_needs_an_identity(client: Any, db: Database, advisor: dict[str, str]) -> None:
    response = await client.post(f"{API}/resolve", json={"display_name": "Nobody"}, headers=advisor)
    assert response.status == 422
    assert "email" in (await response.json())["error"]["message"]
    async with db.transaction() as session:
        with pytest.raises(ValidationFailed, match="'phone'"):
            await service.resolve_shopper(session, phone="not a number")


# --- merge -------------------------------------------------------------------------------


async def _person_with_history(db: Database, **fields: Any) -> uuid.UUID:
    """A profile with a consultation, a shop order and a timeline event of its own."""
    shopper_id = await make_shopper(db, **fields)
    async with db.transaction() as session:
        consultation = Consultation(
            id=uuid.uuid4(),
            shopper_id=shopper_id,
            kind=ConsultationKind.VIDEO,
            status=ConsultationStatus.CLOSED,
        )
        order = ShopOrder(
            id=uuid.uuid4(),
            shopper_id=shopper_id,
            external_id=f"O-{uuid.uuid4().hex[:8]}",
            channel=OrderChannel.WEB,
            ordered_at=datetime(2024, 5, 1, 10, tzinfo=UTC),
            currency="JPY",
            total_minor=12800,
        )
        session.add_all([consultation, order])
        await session.flush()
        await append_event(
            session,
            shopper_id,
            TimelineKind.SHOP_ORDER,
            "Ordered 1 item",
            {"total": 12800},
            occurred_at=order.ordered_at,
            ref_id=str(order.id),
        )
    return shopper_id


async def test_merge_moves_everything_and_records_it(client: Any, db: Database, make_staff: Any) -> None:
    staff = await make_staff(Role.SUPERVISOR)
    headers = await login(client, staff)
    survivor = await _person_with_history(
        db, display_name="Hana", email="hana@example.com", shop_customer_id="C-1"
    )
    merged = await _person_with_history(
        db,
        display_name="H. Sato",
        email="h.sato@example.com",
        phone="090-1234-5678",
        attributes={"skin": "dry"},
    )

    response = await client.post(f"{API}/{survivor}/merge", json={"merge_id": str(merged)}, headers=headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["merged_id"] == str(merged)
    assert body["moved"]["shopper_identities"] == 2
    assert body["moved"]["timeline_events"] == 2  # profile.created + the order event
    assert body["moved"]["consultations"] == 1
    assert body["moved"]["shop_orders"] == 1
    result = body["survivor"]
    assert result["id"] == str(survivor)
    # The survivor keeps its own fields and fills its blanks.
    assert (result["display_name"], result["email"], result["phone"]) == (
        "Hana",
        "hana@example.com",
        "+819012345678",
    )
    assert result["attributes"] == {"skin": "dry"}

    assert await identities_of(db, survivor) == {
        ("email", "hana@example.com"),
        ("email", "h.sato@example.com"),
        ("phone", "+819012345678"),
        ("shop_customer_id", "C-1"),
    }
    assert await identities_of(db, merged) == set()
    for model in (TimelineEvent, Consultation, ShopOrder):
        assert await count(db, model, model.shopper_id == merged) == 0  # type: ignore[attr-defined]
    assert await count(db, Consultation, Consultation.shopper_id == survivor) == 2
    assert await count(db, ShopOrder, ShopOrder.shopper_id == survivor) == 2

    async with db.read() as session:
        merged_row = await session.get(Shopper, merged)
        assert merged_row is not None
        assert merged_row.merged_into_id == survivor
        record = (await session.scalars(select(ShopperMerge))).one()
        audit = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "shopper.merge"))).one()
        newest = (
            await session.scalars(
                select(TimelineEvent)
                .where(TimelineEvent.shopper_id == survivor)
                .order_by(TimelineEvent.occurred_at.desc())
                .limit(1)
            )
        ).one()
    assert (record.survivor_id, record.merged_id, record.merged_by_staff_id) == (survivor, merged, staff.id)
    assert str(record.id) == body["merge_record_id"]
    assert record.details["merged_profile"]["email"] == "h.sato@example.com"
    assert (audit.actor_staff_id, audit.target_type, audit.target_id) == (staff.id, "shopper", str(survivor))
    assert audit.details["merged_id"] == str(merged)
    assert newest.kind == TimelineKind.PROFILE_MERGED
    assert newest.ref_id == str(record.id)
    assert newest.actor_staff_id == staff.id
    assert newest.data["merged_id"] == str(merged)

    # The merged id still resolves — to the survivor, saying so.
    old = await client.get(f"{API}/{merged}")
    assert old.status == 200
    old_body = await old.json()
    assert (old_body["id"], old_body["merged_into"], old_body["requested_id"]) == (
        str(survivor),
        str(survivor),
        str(merged),
    )
    assert (await (await client.get(f"{API}/{survivor}")).json())["merged_into"] is None
    timeline = await (await client.get(f"{API}/{merged}/timeline")).json()
    assert len(timeline["events"]) == 5
    assert {e["shopper_id"] for e in timeline["events"]} == {str(survivor)}
    # And so do the merged profile's identities.
    async with db.transaction() as session:
        found = await service.resolve_shopper(session, phone="+81 90 1234 5678", create=False)
    assert found.view is not None
    assert found.view.shopper.id == survivor


async def test_merge_chain_resolves_in_one_hop(client: Any, db: Database, supervisor: dict[str, str]) -> None:
    a, b, c = [await make_shopper(db, display_name=name) for name in ("1", "2", "3")]
    assert (
        await client.post(f"{API}/{b}/merge", json={"merge_id": str(a)}, headers=supervisor)
    ).status == 200
    second = await client.post(f"{API}/{c}/merge", json={"merge_id": str(b)}, headers=supervisor)
    assert second.status == 200
    # The profile merged into b earlier now points straight at c.
    assert (await second.json())["moved"]["shoppers"] == 1
    async with db.read() as session:
        oldest = await session.get(Shopper, a)
    assert oldest is not None
    assert oldest.merged_into_id == c
    body = await (await client.get(f"{API}/{a}")).json()
    assert (body["id"], body["requested_id"]) == (str(c), str(a))


async def test_merge_refusals(client: Any, db: Database, supervisor: dict[str, str]) -> None:
    a = await make_shopper(db, display_name="A")
    b = await make_shopper(db, display_name="B")
    c = await make_shopper(db, display_name="C")

    itself = await client.post(f"{API}/{a}/merge", json={"merge_id": str(a)}, headers=supervisor)
    assert itself.status == 422
    assert "'merge_id'" in (await itself.json())["error"]["message"]

    missing = await client.post(f"{API}/{a}/merge", json={"merge_id": str(uuid.uuid4())}, headers=supervisor)
    assert missing.status == 404

    assert (
        await client.post(f"{API}/{a}/merge", json={"merge_id": str(b)}, headers=supervisor)
    ).status == 200

    into_merged = await client.post(f"{API}/{b}/merge", json={"merge_id": str(c)}, headers=supervisor)
    assert into_merged.status == 409
    error = (await into_merged.json())["error"]
    assert error["code"] == "shopper_merged"
    assert str(a) in error["message"]

    again = await client.post(f"{API}/{c}/merge", json={"merge_id": str(b)}, headers=supervisor)
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "already_merged"

    bad_body = await client.post(f"{API}/{a}/merge", json={"merge_id": "nope"}, headers=supervisor)
    assert bad_body.status == 422
    assert await count(db, ShopperMerge) == 1
    assert await count(db, AuditEntry, AuditEntry.action == "shopper.merge") == 1


async def test_opposite_merges_at_once_one_wins(
    client: Any, db: Database, supervisor: dict[str, str]
) -> None:
    a = await make_shopper(db, email="a@example.com")
    b = await make_shopper(db, email="b@example.com")
    results = await asyncio.gather(
        client.post(f"{API}/{a}/merge", json={"merge_id": str(b)}, headers=supervisor),
        client.post(f"{API}/{b}/merge", json={"merge_id": str(a)}, headers=supervisor),
    )
    assert sorted(r.status for r in results) == [200, 409]
    assert await count(db, ShopperMerge) == 1
    assert await count(db, Shopper, Shopper.merged_into_id.is_(None)) == 1


async def test_advisor_may_not_merge(client: Any, db: Database, advisor: dict[str, str]) -> None:
    a = await make_shopper(db)
    b = await make_shopper(db, email="b@example.com")
    response = await client.post(f"{API}/{a}/merge", json={"merge_id": str(b)}, headers=advisor)
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"
    assert await count(db, ShopperMerge) == 0
    assert await identities_of(db, b) == {("email", "b@example.com")}


async def test_admin_may_merge(client: Any, db: Database, make_staff: Any) -> None:
    headers = await login(client, await make_staff(Role.ADMIN))
    a, b = await make_shopper(db), await make_shopper(db)
    assert (await client.post(f"{API}/{a}/merge", json={"merge_id": str(b)}, headers=headers)).status == 200


# --- authentication and the API document -------------------------------------------------


async def test_anonymous_gets_401_everywhere(client: Any, db: Database) -> None:
    a = await make_shopper(db)
    b = await make_shopper(db)
    calls = [
        client.post(API, json={"display_name": "X"}),
        client.get(f"{API}/{a}"),
        client.patch(f"{API}/{a}", json={"notes": "x"}),
        client.post(f"{API}/resolve", json={"email": "x@example.com"}),
        client.post(f"{API}/{a}/merge", json={"merge_id": str(b)}),
        client.get(f"{API}/{a}/timeline"),
    ]
    for call in calls:
        response = await call
        assert response.status == 401, response.url
        assert (await response.json())["error"]["code"] == "unauthenticated"
    assert await count(db, Shopper) == 2
    assert await count(db, ShopperMerge) == 0


async def test_routes_are_in_the_openapi_document(client: Any) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    paths = spec["paths"]
    expected = {
        "/api/v1/shoppers": {"post": {"201", "401", "409", "422"}},
        "/api/v1/shoppers/resolve": {"post": {"200", "201", "404", "422"}},
        "/api/v1/shoppers/{shopper_id}": {"get": {"200", "404"}, "patch": {"200", "404", "409", "422"}},
        "/api/v1/shoppers/{shopper_id}/merge": {"post": {"200", "401", "403", "404", "409", "422"}},
        "/api/v1/shoppers/{shopper_id}/timeline": {"get": {"200", "404", "422"}},
    }
    for path, methods in expected.items():
        for method, codes in methods.items():
            operation = paths[path][method]
            assert codes <= set(operation["responses"]), (path, method)
            assert operation["description"]
    timeline_params = {
        p["name"]: p for p in paths["/api/v1/shoppers/{shopper_id}/timeline"]["get"]["parameters"]
    }
    assert timeline_params["limit"]["schema"]["maximum"] == 200
    assert timeline_params["kind"]["schema"]["type"] == "array"
    assert "ShopperCreate" in spec["components"]["schemas"]


async def test_anonymous_is_refused_before_the_body_is_read(client: Any) -> None:
    # Refused for who they are (401), not told about the fields they got wrong (422).
    response = await client.post("/api/v1/shoppers", json={"nonsense": True})
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthenticated"
