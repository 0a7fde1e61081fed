"""The shop API (integration keys: hashed, shown once, revocable, rate-limited; idempotent
upserts of customers, orders with lines and channel events) and the admin API for
integrations and webhooks, with the denials."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from livedesk.kit.db import Database
from livedesk.models import (
    AuditEntry,
    IdentityKind,
    Role,
    ShopOrder,
    ShopOrderLine,
    ShopperIdentity,
    TimelineEvent,
    TimelineKind,
)
from livedesk.models.integrations import DeliveryStatus, IntegrationKey, WebhookDelivery
from livedesk.outbox import webhooks
from livedesk.settings import Settings
from tests.conftest import login

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "integration_rate_limit": "40/minute",
            "webhook_poll_seconds": 0,
            # The endpoints made here point at loopback, which must be allowed to be accepted.
            "webhook_allow_networks": "127.0.0.0/8",
        }
    )


async def make_key(client: Client, make_staff: Any, name: str = "web shop") -> tuple[str, dict[str, Any]]:
    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    created = await client.post("/api/v1/integrations", json={"name": name}, headers=headers)
    assert created.status == 201, await created.text()
    integration = await created.json()
    response = await client.post(
        f"/api/v1/integrations/{integration['id']}/keys", json={"label": "prod"}, headers=headers
    )
    assert response.status == 201, await response.text()
    key = await response.json()
    client.session.cookie_jar.clear()
    return key["key"], integration


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def order(customer: str = "C-1", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": {"shop_customer_id": customer, "email": f"{customer.lower()}@example.com"},
        "ordered_at": "2026-10-01T10:00:00+09:00",
        "currency": "JPY",
        "lines": [
            {"sku": "SERUM-30", "name": "Hydrating serum", "quantity": 1, "unit_price_minor": 4800},
            {"sku": "MASK-5", "name": "Sheet masks", "quantity": 2, "unit_price_minor": 1200},
        ],
    }
    body.update(extra)
    return body


async def test_key_is_hashed_shown_once_and_revocable(client: Client, make_staff: Any, db: Database) -> None:
    key, integration = await make_key(client, make_staff)
    assert key.startswith("ldk_")
    async with db.read() as session:
        row = await session.scalar(select(IntegrationKey))
    assert row is not None
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in (row.key_hash, row.prefix)
    assert key.startswith(row.prefix)

    ok = await client.put("/api/v1/shop/customers/C-9", json={"display_name": "Aoi"}, headers=bearer(key))
    assert ok.status == 201, await ok.text()

    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    listed = await (await client.get("/api/v1/integrations")).json()
    assert key not in str(listed)
    assert listed[0]["keys"][0]["last_used_at"] is not None
    revoked = await client.post(
        f"/api/v1/integrations/{integration['id']}/keys/{row.id}/revoke", headers=headers
    )
    assert revoked.status == 200
    client.session.cookie_jar.clear()
    refused = await client.put("/api/v1/shop/customers/C-9", json={}, headers=bearer(key))
    assert refused.status == 401
    assert (await refused.json())["error"]["code"] == "api_key_revoked"
    async with db.read() as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert {"integration.create", "integration.key.create", "integration.key.revoke"} <= set(actions)


async def test_shop_api_refuses_without_a_valid_key(client: Client) -> None:
    # 401 comes before any complaint about the body.
    for headers in ({}, {"Authorization": "Basic abc"}, bearer("ldk_not-a-key")):
        response = await client.put("/api/v1/shop/orders/O-1", json={"nonsense": 1}, headers=headers)
        assert response.status == 401
        body = await response.json()
        assert body["error"]["code"] in {"no_api_key", "bad_api_key"}


async def test_staff_cannot_manage_integrations(client: Client, make_staff: Any) -> None:
    anonymous = await client.post("/api/v1/integrations", json={"name": "x"})
    assert anonymous.status == 401
    advisor = await make_staff(Role.ADVISOR)
    headers = await login(client, advisor)
    for method, path in (
        ("POST", "/api/v1/integrations"),
        ("GET", "/api/v1/integrations"),
        ("GET", "/api/v1/webhooks/endpoints"),
        ("GET", "/api/v1/webhooks/deliveries"),
    ):
        response = await client.request(method, path, json={"name": "x"}, headers=headers)
        assert response.status == 403, path


async def test_order_upsert_is_idempotent(client: Client, make_staff: Any, db: Database) -> None:
    key, _ = await make_key(client, make_staff)
    first = await client.put("/api/v1/shop/orders/O-100", json=order(), headers=bearer(key))
    assert first.status == 201, await first.text()
    created = await first.json()
    assert created["total_minor"] == 4800 + 2 * 1200
    again = await client.put("/api/v1/shop/orders/O-100", json=order(), headers=bearer(key))
    assert again.status == 200
    assert (await again.json())["changed"] is False
    changed = order(
        lines=[{"sku": "SERUM-30", "name": "Hydrating serum", "quantity": 3, "unit_price_minor": 4800}]
    )
    third = await client.put("/api/v1/shop/orders/O-100", json=changed, headers=bearer(key))
    assert (await third.json())["changed"] is True

    shopper_id = uuid.UUID(created["shopper_id"])
    async with db.read() as session:
        orders = (await session.scalars(select(ShopOrder))).all()
        lines = (await session.execute(select(ShopOrderLine.sku, ShopOrderLine.quantity))).all()
        events = (
            await session.scalars(select(TimelineEvent).where(TimelineEvent.kind == TimelineKind.SHOP_ORDER))
        ).all()
        identities = (
            await session.execute(
                select(ShopperIdentity.kind, ShopperIdentity.value).where(
                    ShopperIdentity.shopper_id == shopper_id
                )
            )
        ).all()
    assert len(orders) == 1
    assert orders[0].total_minor == 3 * 4800
    assert [tuple(r) for r in lines] == [("SERUM-30", 3)]
    assert len(events) == 1
    assert events[0].shopper_id == shopper_id
    assert events[0].ref_id == str(orders[0].id)
    assert set(identities) == {
        (IdentityKind.SHOP_CUSTOMER_ID, "C-1"),
        (IdentityKind.EMAIL, "c-1@example.com"),
    }


async def test_order_of_another_customer_conflicts(client: Client, make_staff: Any) -> None:
    key, _ = await make_key(client, make_staff)
    assert (await client.put("/api/v1/shop/orders/O-7", json=order("C-1"), headers=bearer(key))).status == 201
    other = await client.put("/api/v1/shop/orders/O-7", json=order("C-2"), headers=bearer(key))
    assert other.status == 409
    assert (await other.json())["error"]["code"] == "order_customer_mismatch"


async def test_bad_fields_are_named(client: Client, make_staff: Any) -> None:
    key, _ = await make_key(client, make_staff)
    bad = order()
    bad["customer"]["email"] = "not-an-email"
    response = await client.put("/api/v1/shop/orders/O-1", json=bad, headers=bearer(key))
    assert response.status == 422
    assert "customer.email" in (await response.json())["error"]["message"]
    naive = await client.put(
        "/api/v1/shop/orders/O-1", json=order(ordered_at="2026-10-01T10:00:00"), headers=bearer(key)
    )
    assert naive.status == 422
    empty = await client.put("/api/v1/shop/orders/O-1", json=order(lines=[]), headers=bearer(key))
    assert empty.status == 422


async def test_customer_upsert_and_identity_conflict(client: Client, make_staff: Any) -> None:
    key, _ = await make_key(client, make_staff)
    first = await client.put(
        "/api/v1/shop/customers/C-1",
        json={"display_name": "Hana Mori", "email": "hana@example.com", "phone": "090-1234-5678"},
        headers=bearer(key),
    )
    assert first.status == 201, await first.text()
    same = await client.put(
        "/api/v1/shop/customers/C-1", json={"email": "HANA@example.com"}, headers=bearer(key)
    )
    assert same.status == 200
    assert (await same.json())["shopper_id"] == (await first.json())["shopper_id"]
    clash = await client.put(
        "/api/v1/shop/customers/C-2", json={"email": "hana@example.com"}, headers=bearer(key)
    )
    assert clash.status == 409
    assert (await clash.json())["error"]["code"] == "identity_conflict"


async def test_store_visits_land_once_on_the_timeline(client: Client, make_staff: Any, db: Database) -> None:
    key, _ = await make_key(client, make_staff)
    body = {
        "customer": {"shop_customer_id": "C-5"},
        "kind": "store.visit",
        "occurred_at": "2026-10-02T15:00:00+09:00",
        "store_name": "Ginza",
        "description": "tried foundations",
    }
    first = await client.put("/api/v1/shop/events/V-1", json=body, headers=bearer(key))
    assert first.status == 201, await first.text()
    assert (await client.put("/api/v1/shop/events/V-1", json=body, headers=bearer(key))).status == 200
    other = {**body, "kind": "newsletter.click", "description": "Autumn catalogue"}
    assert (await client.put("/api/v1/shop/events/N-1", json=other, headers=bearer(key))).status == 201
    async with db.read() as session:
        kinds = (await session.scalars(select(TimelineEvent.kind).order_by(TimelineEvent.occurred_at))).all()
    assert kinds.count(TimelineKind.STORE_VISIT) == 1
    assert kinds.count(TimelineKind.CHANNEL_EVENT) == 1


async def test_rate_limited_per_key(client: Client, make_staff: Any) -> None:
    key, _ = await make_key(client, make_staff)
    statuses = [
        (await client.put(f"/api/v1/shop/customers/R-{n}", json={}, headers=bearer(key))).status
        for n in range(41)
    ]
    assert statuses[:40] == [201] * 40
    assert statuses[40] == 429


async def test_webhook_admin_and_delivery_log(client: Client, make_staff: Any, db: Database) -> None:
    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    bad = await client.post(
        "/api/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/x", "event_types": ["nope"]},
        headers=headers,
    )
    assert bad.status == 422
    created = await client.post(
        "/api/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/x", "event_types": ["booking.created"]},
        headers=headers,
    )
    assert created.status == 201
    endpoint = await created.json()
    assert endpoint["secret"].startswith("whsec_")
    listed = await (await client.get("/api/v1/webhooks/endpoints")).json()
    assert "secret" not in listed[0]

    async with db.transaction() as session:
        await webhooks.enqueue(session, webhooks.BOOKING_CREATED, {"booking_id": "b1"})
        delivery = await session.scalar(select(WebhookDelivery))
        assert delivery is not None
        delivery.status = DeliveryStatus.FAILED
        delivery.attempts = 8
    log = await (await client.get("/api/v1/webhooks/deliveries?status=failed")).json()
    assert [d["event_type"] for d in log] == ["booking.created"]
    detail = await (await client.get(f"/api/v1/webhooks/deliveries/{log[0]['id']}")).json()
    assert detail["payload"]["data"] == {"booking_id": "b1"}
    retried = await client.post(f"/api/v1/webhooks/deliveries/{log[0]['id']}/retry", headers=headers)
    assert retried.status == 200
    assert (await retried.json())["status"] == "pending"
    again = await client.post(f"/api/v1/webhooks/deliveries/{log[0]['id']}/retry", headers=headers)
    assert again.status == 409

    paused = await client.patch(
        f"/api/v1/webhooks/endpoints/{endpoint['id']}", json={"active": False}, headers=headers
    )
    assert (await paused.json())["active"] is False
    async with db.transaction() as session:
        await webhooks.enqueue(session, webhooks.BOOKING_CREATED, {"booking_id": "b2"})
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
