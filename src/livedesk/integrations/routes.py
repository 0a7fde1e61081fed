"""Admin API of the integrations capability: integrations and their API keys, webhook
endpoints and the delivery log. Admins only."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r201, r401, r403, r404, r409, r422
from pydantic import BaseModel, Field

from livedesk.identity import guarded, require_staff
from livedesk.integrations import endpoints, keys
from livedesk.integrations.delivery import DELIVERY_JOB
from livedesk.integrations.egress import Network, parse_networks
from livedesk.integrations.schemas import (
    AttemptOut,
    DeliveryDetailOut,
    DeliveryOut,
    EndpointCreate,
    EndpointOut,
    EndpointUpdate,
    IntegrationCreate,
    IntegrationOut,
    KeyCreate,
    KeyOut,
    NewEndpointOut,
    NewKeyOut,
    RotateSecret,
)
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import ValidationFailed
from livedesk.kit.http import ErrorResponse, model_json
from livedesk.models import Role
from livedesk.models.integrations import DeliveryStatus, IntegrationKey, WebhookDelivery, WebhookEndpoint

ADMIN = Role.ADMIN


def key_out(row: IntegrationKey) -> KeyOut:
    return KeyOut(
        id=row.id,
        label=row.label,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def endpoint_out(row: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        id=row.id,
        url=row.url,
        description=row.description,
        event_types=list(row.event_types),
        active=row.active,
        created_at=row.created_at,
        previous_secret_until=row.previous_secret_until if row.previous_secret else None,
    )


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status.value,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


@guarded(ADMIN)
async def list_integrations(
    request: web.Request,
) -> r200[list[IntegrationOut]] | r401[ErrorResponse] | r403[ErrorResponse]:
    """Integrations with their keys (never the keys themselves).

    Tags: integrations
    """
    await require_staff(request, ADMIN)
    async with request.app[DB].read() as session:
        rows = await keys.list_integrations(session)
        out: list[BaseModel] = [
            IntegrationOut(id=i.id, name=i.name, created_at=i.created_at, keys=[key_out(k) for k in ks])
            for i, ks in rows
        ]
    return model_json(out)


@guarded(ADMIN)
async def create_integration(
    request: web.Request, body: IntegrationCreate
) -> (
    r201[IntegrationOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
):
    """Add an integration (a shop, a store system …).

    Tags: integrations
    """
    staff = await require_staff(request, ADMIN)
    async with request.app[DB].transaction() as session:
        row = await keys.create_integration(session, body.name, actor_staff_id=staff.staff_id)
        out = IntegrationOut(id=row.id, name=row.name, created_at=row.created_at, keys=[])
    return model_json(out, status=201)


@guarded(ADMIN)
async def create_key(
    request: web.Request, integration_id: uuid.UUID, /, body: KeyCreate
) -> r201[NewKeyOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse] | r422[ErrorResponse]:
    """Make an API key for the integration. The key is in this answer only.

    Tags: integrations
    """
    staff = await require_staff(request, ADMIN)
    async with request.app[DB].transaction() as session:
        row, key = await keys.create_key(session, integration_id, body.label, actor_staff_id=staff.staff_id)
        out = NewKeyOut(**key_out(row).model_dump(), key=key)
    response = model_json(out, status=201)
    response.headers["Cache-Control"] = "no-store"
    return response


@guarded(ADMIN)
async def revoke_key(
    request: web.Request, integration_id: uuid.UUID, key_id: uuid.UUID, /
) -> r200[KeyOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """Revoke an API key: it stops working at once.

    Tags: integrations
    """
    staff = await require_staff(request, ADMIN)
    async with request.app[DB].transaction() as session:
        row = await keys.revoke_key(session, integration_id, key_id, actor_staff_id=staff.staff_id)
        out = key_out(row)
    return model_json(out)


def _allow(request: web.Request) -> tuple[Network, ...]:
    return parse_networks(request.app[SETTINGS].webhook_allow_networks)


@guarded(ADMIN)
async def list_endpoints(
    request: web.Request,
) -> r200[list[EndpointOut]] | r401[ErrorResponse] | r403[ErrorResponse]:
    """Webhook endpoints.

    Tags: webhooks
    """
    await require_staff(request, ADMIN)
    async with request.app[DB].read() as session:
        out: list[BaseModel] = [endpoint_out(e) for e in await endpoints.list_endpoints(session)]
    return model_json(out)


@guarded(ADMIN)
async def create_endpoint(
    request: web.Request, body: EndpointCreate
) -> r201[NewEndpointOut] | r401[ErrorResponse] | r403[ErrorResponse] | r422[ErrorResponse]:
    """Add a webhook endpoint; the answer holds its signing secret, shown this once.

    Tags: webhooks
    """
    staff = await require_staff(request, ADMIN)
    async with request.app[DB].transaction() as session:
        row = await endpoints.create_endpoint(
            session, body, actor_staff_id=staff.staff_id, allow=_allow(request)
        )
        out = NewEndpointOut(**endpoint_out(row).model_dump(), secret=row.secret)
    response = model_json(out, status=201)
    response.headers["Cache-Control"] = "no-store"
    return response


@guarded(ADMIN)
async def update_endpoint(
    request: web.Request, endpoint_id: uuid.UUID, /, body: EndpointUpdate
) -> (
    r200[EndpointOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse] | r422[ErrorResponse]
):
    """Change an endpoint's URL, event types, description, or pause it (active false).

    Tags: webhooks
    """
    staff = await require_staff(request, ADMIN)
    async with request.app[DB].transaction() as session:
        row = await endpoints.update_endpoint(
            session, endpoint_id, body, actor_staff_id=staff.staff_id, allow=_allow(request)
        )
        out = endpoint_out(row)
    return model_json(out)


@guarded(ADMIN)
async def rotate_secret(
    request: web.Request, endpoint_id: uuid.UUID, /, body: RotateSecret
) -> (
    r200[NewEndpointOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r422[ErrorResponse]
):
    """Give the endpoint a new signing secret, shown in this answer only. The old one keeps
    signing beside it (a second signature in each header) for the overlap window.

    Tags: webhooks
    """
    staff = await require_staff(request, ADMIN)
    hours = body.overlap_hours
    if hours is None:
        hours = request.app[SETTINGS].webhook_rotation_overlap_hours
    async with request.app[DB].transaction() as session:
        row = await endpoints.rotate_secret(
            session, endpoint_id, overlap=timedelta(hours=hours), actor_staff_id=staff.staff_id
        )
        out = NewEndpointOut(**endpoint_out(row).model_dump(), secret=row.secret)
    response = model_json(out, status=200)
    response.headers["Cache-Control"] = "no-store"
    return response


@guarded(ADMIN)
async def send_test_event(
    request: web.Request, endpoint_id: uuid.UUID, /
) -> r201[DeliveryOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """Send a ``webhook.test`` event to this endpoint now (tried once). The answer is the
    queued delivery: follow it with GET /api/v1/webhooks/deliveries/{id} until it is
    succeeded or failed.

    Tags: webhooks
    """
    staff = await require_staff(request, ADMIN)
    async with request.app[DB].transaction() as session:
        row = await endpoints.send_test(session, endpoint_id, actor_staff_id=staff.staff_id)
        out = delivery_out(row)
    job = request.app.get(DELIVERY_JOB)
    if job is not None:
        # Posted now rather than at the next poll: the admin is watching.
        job.kick()
    return model_json(out, status=201)


def _status(value: str | None) -> DeliveryStatus | None:
    if value is None:
        return None
    try:
        return DeliveryStatus(value)
    except ValueError:
        raise ValidationFailed(
            f"query field 'status': must be one of {[s.value for s in DeliveryStatus]}",
            details=[{"in": "query", "field": "status", "message": "unknown status"}],
        ) from None


@guarded(ADMIN)
async def list_deliveries(
    request: web.Request,
    endpoint_id: uuid.UUID | None = None,
    status: Annotated[str | None, Field(description="pending, succeeded or failed")] = None,
    limit: Annotated[int, Field(ge=1, le=endpoints.MAX_LOG)] = 50,
) -> r200[list[DeliveryOut]] | r401[ErrorResponse] | r403[ErrorResponse] | r422[ErrorResponse]:
    """The webhook delivery log, newest first.

    Tags: webhooks
    """
    await require_staff(request, ADMIN)
    async with request.app[DB].read() as session:
        rows = await endpoints.list_deliveries(
            session, endpoint_id=endpoint_id, status=_status(status), limit=limit
        )
        out: list[BaseModel] = [delivery_out(r) for r in rows]
    return model_json(out)


@guarded(ADMIN)
async def get_delivery(
    request: web.Request, delivery_id: uuid.UUID, /
) -> r200[DeliveryDetailOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """One delivery with its payload and every attempt.

    Tags: webhooks
    """
    await require_staff(request, ADMIN)
    async with request.app[DB].read() as session:
        row, log = await endpoints.delivery_detail(session, delivery_id)
        out = DeliveryDetailOut(
            **delivery_out(row).model_dump(),
            payload=row.payload,
            log=[
                AttemptOut(at=a.at, status_code=a.status_code, error=a.error, duration_ms=a.duration_ms)
                for a in log
            ],
        )
    return model_json(out)


@guarded(ADMIN)
async def retry_delivery(
    request: web.Request, delivery_id: uuid.UUID, /
) -> (
    r200[DeliveryOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse] | r409[ErrorResponse]
):
    """Send a failed delivery again.

    Tags: webhooks
    """
    staff = await require_staff(request, ADMIN)
    async with request.app[DB].transaction() as session:
        row = await endpoints.retry_delivery(session, delivery_id, actor_staff_id=staff.staff_id)
        out = delivery_out(row)
    return model_json(out)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/integrations", list_integrations)
    app.router.add_post("/api/v1/integrations", create_integration)
    app.router.add_post("/api/v1/integrations/{integration_id}/keys", create_key)
    app.router.add_post("/api/v1/integrations/{integration_id}/keys/{key_id}/revoke", revoke_key)
    app.router.add_get("/api/v1/webhooks/endpoints", list_endpoints)
    app.router.add_post("/api/v1/webhooks/endpoints", create_endpoint)
    app.router.add_patch("/api/v1/webhooks/endpoints/{endpoint_id}", update_endpoint)
    app.router.add_post("/api/v1/webhooks/endpoints/{endpoint_id}/rotate-secret", rotate_secret)
    app.router.add_post("/api/v1/webhooks/endpoints/{endpoint_id}/test", send_test_event)
    app.router.add_get("/api/v1/webhooks/deliveries", list_deliveries)
    app.router.add_get("/api/v1/webhooks/deliveries/{delivery_id}", get_delivery)
    app.router.add_post("/api/v1/webhooks/deliveries/{delivery_id}/retry", retry_delivery)
