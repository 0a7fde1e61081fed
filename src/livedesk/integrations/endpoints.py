"""Webhook endpoints and their delivery log, as an admin manages them."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from yarl import URL

from livedesk import audit
from livedesk.integrations.egress import SETTING, Network, refusal_for_url
from livedesk.integrations.schemas import EndpointCreate, EndpointUpdate
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict, NotFound, ValidationFailed
from livedesk.models.integrations import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from livedesk.outbox.webhooks import TEST_EVENT

MAX_LOG = 200


def new_secret() -> str:
    """``whsec_`` and 32 random bytes in standard base64: the form Standard Webhooks
    libraries decode to the signing key (and our own scheme signs with the whole string)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _audit(session: AsyncSession, actor: uuid.UUID | None, action: str, endpoint: WebhookEndpoint) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        details={"url": endpoint.url, "event_types": endpoint.event_types, "active": endpoint.active},
    )


def _check_url(url: str, allow: Sequence[Network]) -> None:
    """Refuse a URL whose host is a literal forbidden address now, with the reason, rather
    than let every delivery fail. Host names are checked when resolved, at each delivery."""
    try:
        valid = bool(URL(url).host)
    except ValueError:
        valid = False
    if not valid:
        raise ValidationFailed("The webhook URL has no valid host", code="invalid_url", details={"url": url})
    reason = refusal_for_url(url, allow)
    if reason is not None:
        raise ValidationFailed(
            f"Webhooks may not reach {reason}; {SETTING} can allow its network",
            code="webhook_url_forbidden",
            details={"url": url},
        )


async def create_endpoint(
    session: AsyncSession,
    data: EndpointCreate,
    *,
    actor_staff_id: uuid.UUID | None,
    allow: Sequence[Network] = (),
) -> WebhookEndpoint:
    """A new endpoint with a fresh signing secret (returned once by the route).

    ``allow``: the networks an operator allowed (``parse_networks`` of the setting)."""
    _check_url(data.url, allow)
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        url=data.url,
        description=data.description,
        secret=new_secret(),
        event_types=list(data.event_types),
        active=True,
        created_at=utcnow(),
    )
    session.add(endpoint)
    _audit(session, actor_staff_id, "webhook.endpoint.create", endpoint)
    return endpoint


async def list_endpoints(session: AsyncSession) -> Sequence[WebhookEndpoint]:
    return (await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at))).all()


async def update_endpoint(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    data: EndpointUpdate,
    *,
    actor_staff_id: uuid.UUID | None,
    allow: Sequence[Network] = (),
) -> WebhookEndpoint:
    """Change url, description, event types or active (a paused endpoint gets no new rows)."""
    if data.url is not None:
        _check_url(data.url, allow)
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None:
        raise NotFound("No such webhook endpoint", code="endpoint_not_found")
    if data.url is not None:
        endpoint.url = data.url
    if data.description is not None:
        endpoint.description = data.description
    if data.event_types is not None:
        endpoint.event_types = list(data.event_types)
    if data.active is not None:
        endpoint.active = data.active
    _audit(session, actor_staff_id, "webhook.endpoint.update", endpoint)
    return endpoint


async def list_deliveries(
    session: AsyncSession,
    *,
    endpoint_id: uuid.UUID | None,
    status: DeliveryStatus | None,
    limit: int,
) -> Sequence[WebhookDelivery]:
    """The delivery log, newest first."""
    stmt = select(WebhookDelivery).order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    if endpoint_id is not None:
        stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    return (await session.scalars(stmt.limit(min(limit, MAX_LOG)))).all()


async def delivery_detail(
    session: AsyncSession, delivery_id: uuid.UUID
) -> tuple[WebhookDelivery, Sequence[WebhookAttempt]]:
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound("No such webhook delivery", code="delivery_not_found")
    log = (
        await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.at)
        )
    ).all()
    return delivery, log


async def retry_delivery(
    session: AsyncSession, delivery_id: uuid.UUID, *, actor_staff_id: uuid.UUID | None
) -> WebhookDelivery:
    """Send a failed delivery again now (with a fresh set of tries)."""
    delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise NotFound("No such webhook delivery", code="delivery_not_found")
    if delivery.status != DeliveryStatus.FAILED:
        raise Conflict(
            f"The delivery is {delivery.status.value}; only a failed one is retried", code="not_failed"
        )
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.locked_until = None
    audit.record(
        session,
        actor=actor_staff_id,
        action="webhook.delivery.retry",
        target_type="webhook_delivery",
        target_id=delivery.id,
        details={"event_type": delivery.event_type},
    )
    return delivery


async def _endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None:
        raise NotFound("No such webhook endpoint", code="endpoint_not_found")
    return endpoint


async def rotate_secret(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    overlap: timedelta,
    actor_staff_id: uuid.UUID | None,
) -> WebhookEndpoint:
    """A new signing secret (returned once by the route); the current one keeps signing too,
    beside it, for ``overlap`` (zero: it stops at once). Rotating again inside a window
    ends the older window: only the secret just replaced stays valid."""
    endpoint = await _endpoint(session, endpoint_id)
    now = utcnow()
    endpoint.previous_secret = endpoint.secret if overlap > timedelta(0) else ""
    endpoint.previous_secret_until = now + overlap if overlap > timedelta(0) else None
    endpoint.secret = new_secret()
    audit.record(
        session,
        actor=actor_staff_id,
        action="webhook.endpoint.rotate",
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        details={"url": endpoint.url, "overlap_seconds": int(overlap.total_seconds())},
    )
    return endpoint


async def send_test(
    session: AsyncSession, endpoint_id: uuid.UUID, *, actor_staff_id: uuid.UUID | None
) -> WebhookDelivery:
    """Queue a ``webhook.test`` event for this endpoint only (paused or not: the admin asked),
    due now and tried once; the delivery log shows its answer."""
    endpoint = await _endpoint(session, endpoint_id)
    now = utcnow()
    event_id = uuid.uuid4()
    delivery = WebhookDelivery(
        id=uuid.uuid4(),
        endpoint_id=endpoint.id,
        event_id=event_id,
        event_type=TEST_EVENT,
        payload={
            "id": str(event_id),
            "type": TEST_EVENT,
            "created_at": now.isoformat(),
            "data": {"endpoint_id": str(endpoint.id), "message": "A test event sent from livedesk's admin."},
        },
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        last_error="",
        created_at=now,
    )
    session.add(delivery)
    audit.record(
        session,
        actor=actor_staff_id,
        action="webhook.endpoint.test",
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        details={"url": endpoint.url},
    )
    return delivery
