"""The shop API: a shop's systems push customers, orders and channel events, authenticated
with an integration key (``Authorization: Bearer ldk_…``), rate-limited per key. No cookies
are involved, so there is no CSRF to check; a staff cookie sent along grants nothing here.

Every call is an idempotent ``PUT`` by the shop's own id: 201 the first time, 200 after.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r201, r401, r409, r422, r429
from pydantic import Field
from sqlalchemy import or_, update

from livedesk.integrations import keys, shop
from livedesk.integrations.schemas import (
    ChannelEventOut,
    ChannelEventUpsert,
    OrderOut,
    OrderUpsert,
    ShopperUpsert,
    ShopShopperOut,
)
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.http import ErrorResponse, Handler, endpoint, model_json
from livedesk.models.integrations import IntegrationKey

INTEGRATION: web.RequestKey[keys.IntegrationPrincipal] = web.RequestKey("livedesk_integration")
ShopId = Annotated[str, Field(min_length=1, max_length=128)]
# last_used_at is for an admin's eye; writing it on every request would be a write per call.
_TOUCH_EVERY = timedelta(minutes=1)


async def authenticate(request: web.Request) -> keys.IntegrationPrincipal:
    """The calling integration (401 without a valid key; 429 past the key's rate limit)."""
    if INTEGRATION in request:
        return request[INTEGRATION]
    key = keys.bearer_key(request.headers.get("Authorization"))
    async with request.app[DB].transaction() as session:
        principal = await keys.authenticate(session, key)
        now = utcnow()
        await session.execute(
            update(IntegrationKey)
            .where(
                IntegrationKey.id == principal.key_id,
                or_(IntegrationKey.last_used_at.is_(None), IntegrationKey.last_used_at < now - _TOUCH_EVERY),
            )
            .values(last_used_at=now)
        )
    await request.app[RATE_LIMITS].hit(
        request.app[SETTINGS].integration_rate_limit,
        "integration",
        str(principal.key_id),
        message="Too many shop API requests for this key; slow down",
    )
    request[INTEGRATION] = principal
    return principal


def shop_api(handler: Callable[..., Awaitable[web.StreamResponse]]) -> Handler:
    """``endpoint`` with the key checked before the body is parsed (401 before 422)."""
    parsed = endpoint(handler)

    @functools.wraps(parsed)
    async def check_key_then_parse(request: web.Request) -> web.StreamResponse:
        await authenticate(request)
        return await parsed(request)

    return check_key_then_parse


@shop_api
async def put_customer(
    request: web.Request, shop_customer_id: ShopId, /, body: ShopperUpsert
) -> (
    r200[ShopShopperOut]
    | r201[ShopShopperOut]
    | r401[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
):
    """Create or update a shop customer's profile, keyed by the shop's customer id.

    Only the profile holding this shop customer id is written; an e-mail or phone number of
    another profile is a 409 identity_conflict. ``changed`` says whether anything differed.

    Tags: shop
    """
    await authenticate(request)
    async with request.app[DB].transaction() as session:
        done = await shop.upsert_shopper(session, shop_customer_id, body)
    out = ShopShopperOut(
        shopper_id=done.shopper_id,
        shop_customer_id=shop_customer_id.strip(),
        created=done.created,
        changed=done.changed,
    )
    return model_json(out, status=201 if done.created else 200)


@shop_api
async def put_order(
    request: web.Request, external_id: ShopId, /, body: OrderUpsert
) -> (
    r200[OrderOut]
    | r201[OrderOut]
    | r401[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
    | r429[ErrorResponse]
):
    """Create or replace an order with its line items, keyed by the shop's order id.

    The customer is found by shop customer id (then e-mail, then phone for a known one). A
    new shop customer id gets its own profile; sent with an e-mail or phone number of
    another profile it is a 409 identity_conflict, never filed under that profile. The first
    time, the order lands on the shopper's timeline.

    Tags: shop
    """
    await authenticate(request)
    async with request.app[DB].transaction() as session:
        done = await shop.upsert_order(session, external_id, body)
    assert body.total_minor is not None
    out = OrderOut(
        id=done.id,
        external_id=external_id,
        shopper_id=done.shopper_id,
        created=done.created,
        changed=done.changed,
        total_minor=body.total_minor,
        lines=len(body.lines),
    )
    return model_json(out, status=201 if done.created else 200)


@shop_api
async def put_event(
    request: web.Request, external_id: ShopId, /, body: ChannelEventUpsert
) -> (
    r200[ChannelEventOut]
    | r201[ChannelEventOut]
    | r401[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
):
    """Record a store visit (kind store.visit) or another channel event once, keyed by the
    shop's event id; it lands on the shopper's timeline. The customer is found as for an
    order (409 identity_conflict for a new shop id with another profile's e-mail or phone).

    Tags: shop
    """
    principal = await authenticate(request)
    async with request.app[DB].transaction() as session:
        done = await shop.record_event(session, external_id, body, integration_id=principal.integration_id)
    out = ChannelEventOut(
        id=done.id,
        external_id=external_id,
        shopper_id=done.shopper_id,
        created=done.created,
        changed=done.changed,
    )
    return model_json(out, status=201 if done.created else 200)


def setup_routes(app: web.Application) -> None:
    app.router.add_put("/api/v1/shop/customers/{shop_customer_id}", put_customer)
    app.router.add_put("/api/v1/shop/orders/{external_id}", put_order)
    app.router.add_put("/api/v1/shop/events/{external_id}", put_event)
