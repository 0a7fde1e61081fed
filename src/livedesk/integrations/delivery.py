"""The webhook delivery job: claims due outbox rows, posts them signed, logs every attempt,
and retries failures with exponential backoff until ``webhook_max_attempts``.

Every process runs one. A row is claimed by writing a lease (``locked_until``) in a short
transaction — on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, on SQLite under the write lock
every transaction takes — so two processes never post the same row at once; the result is
written only while the lease is still ours (a conditional UPDATE), so a process that stalled
past its lease cannot overwrite the next owner's outcome.
"""

from __future__ import annotations

import asyncio
import http
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from aiohttp import web
from sqlalchemy import or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.sql.elements import ColumnElement

from livedesk.integrations.egress import (
    EgressRefused,
    Network,
    guarded_session,
    parse_networks,
    refusal_for_url,
)
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.db import Database
from livedesk.kit.logging import get_logger
from livedesk.kit.periodic import Periodic
from livedesk.models.integrations import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from livedesk.outbox.webhooks import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, body_of, sign
from livedesk.settings import Settings

log = get_logger("livedesk.webhooks")

BATCH = 20
MAX_BACKOFF_SECONDS = 6 * 3600
ERROR_MAX = 500
USER_AGENT = "livedesk-webhooks/1"


def backoff(settings: Settings, attempts: int) -> timedelta:
    """Wait before try number ``attempts + 1``: base, 2×base, 4×base … capped at 6 hours."""
    seconds = settings.webhook_backoff_seconds * (2 ** max(0, attempts - 1))
    return timedelta(seconds=min(seconds, MAX_BACKOFF_SECONDS))


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    lease: datetime
    attempts: int
    url: str
    secret: str
    event_id: uuid.UUID
    event_type: str
    body: bytes


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Pending, its time come, and not leased to a process right now."""
    return (
        WebhookDelivery.status == DeliveryStatus.PENDING,
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
    )


async def claim(db: Database, settings: Settings, limit: int = BATCH) -> list[Claimed]:
    """Take up to ``limit`` due rows for this process (one short transaction)."""
    now = utcnow()
    # Most polls find nothing due: say so from a read, without the write lock a claim takes
    # (on SQLite, the lock every chat send needs too).
    async with db.read() as session:
        due = await session.scalar(select(WebhookDelivery.id).where(*_due(now)).limit(1))
    if due is None:
        return []
    lease = now + timedelta(seconds=settings.webhook_timeout_seconds * 2 + 5)
    async with db.transaction() as session:
        stmt = (
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(*_due(now))
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
        if not db.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True, of=WebhookDelivery)
        rows = (await session.execute(stmt)).all()
        claimed: list[Claimed] = []
        for delivery, endpoint in rows:
            delivery.locked_until = lease
            claimed.append(
                Claimed(
                    id=delivery.id,
                    lease=lease,
                    attempts=delivery.attempts,
                    url=endpoint.url,
                    secret=endpoint.secret,
                    event_id=delivery.event_id,
                    event_type=delivery.event_type,
                    body=body_of(delivery),
                )
            )
    return claimed


async def post(
    http_client: aiohttp.ClientSession, item: Claimed, limit_seconds: float, allow: Sequence[Network] = ()
) -> tuple[int | None, str]:
    """Post one delivery; (status code or None, error text or "").

    The error text is ours, never the receiver's words: an admin reads it in the delivery log,
    and a receiver's answer (an error page, a banner of a service that does not speak HTTP)
    is exactly what would make a webhook a probe of hosts livedesk can reach.
    """
    refused = refusal_for_url(item.url, allow)
    if refused is not None:
        return None, f"refused: {refused}"
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(item.secret, item.body),
        EVENT_ID_HEADER: str(item.event_id),
        EVENT_TYPE_HEADER: item.event_type,
    }
    try:
        async with http_client.post(
            item.url,
            data=item.body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=limit_seconds),
            # A redirect is the receiver's misconfiguration, not a delivery; following one
            # would also lead to an address nobody checked.
            allow_redirects=False,
        ) as response:
            if 200 <= response.status < 300:
                return response.status, ""
            # The body is left unread: neither stored nor worth the wait.
            return response.status, f"HTTP {response.status} {_phrase(response.status)}".strip()
    except TimeoutError:
        return None, f"no answer within {limit_seconds:g} s"
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, EgressRefused):
            return None, f"refused: {exc.os_error}"
        return None, f"{type(exc).__name__}: {exc.os_error.strerror or exc.os_error}"
    except aiohttp.ClientError as exc:
        # Only the kind of failure: the message of a parse error quotes the bytes received.
        return None, type(exc).__name__


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


async def record(
    db: Database,
    settings: Settings,
    item: Claimed,
    status_code: int | None,
    error: str,
    duration_ms: int,
) -> bool:
    """Write the outcome if the lease is still ours; False when another process took over."""
    now = utcnow()
    attempts = item.attempts + 1
    values: dict[str, object] = {
        "attempts": attempts,
        "locked_until": None,
        "last_status_code": status_code,
        "last_error": error[:ERROR_MAX],
    }
    if not error:
        values.update(status=DeliveryStatus.SUCCEEDED, delivered_at=now)
    elif attempts >= settings.webhook_max_attempts:
        values.update(status=DeliveryStatus.FAILED)
    else:
        values.update(next_attempt_at=now + backoff(settings, attempts))
    async with db.transaction() as session:
        result = await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == item.id, WebhookDelivery.locked_until == item.lease)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        if result.rowcount != 1:
            return False
        session.add(
            WebhookAttempt(
                id=uuid.uuid4(),
                delivery_id=item.id,
                at=now,
                status_code=status_code,
                error=error[:ERROR_MAX],
                duration_ms=duration_ms,
            )
        )
    return True


class DeliveryJob:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        # Parsed here, at start: a bad entry stops the app instead of opening up silently.
        self.allow = parse_networks(settings.webhook_allow_networks)
        self.http: aiohttp.ClientSession | None = None
        # A full batch means more is due: the next pass starts without waiting. A failing pass
        # is logged and the next tick tries again.
        self._job = Periodic(
            "livedesk-webhooks",
            self.run_once,
            every=settings.webhook_poll_seconds,
            first_at_once=True,
            again_at_once=lambda tried: isinstance(tried, int) and tried >= BATCH,
        )

    async def run_once(self) -> int:
        """Deliver what is due now; how many rows were tried."""
        if self.http is None:
            self.http = guarded_session(self.allow)
        claimed = await claim(self.db, self.settings)
        await asyncio.gather(*(self._deliver(item) for item in claimed))
        return len(claimed)

    async def _deliver(self, item: Claimed) -> None:
        assert self.http is not None
        started = time.perf_counter()
        status, error = await post(self.http, item, self.settings.webhook_timeout_seconds, self.allow)
        took = int((time.perf_counter() - started) * 1000)
        if not await record(self.db, self.settings, item, status, error, took):
            log.warning("webhook lease lost before the result was written", delivery=str(item.id))
        elif error:
            log.info("webhook delivery failed", delivery=str(item.id), error=error, attempt=item.attempts + 1)

    async def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()
        if self.http is not None:
            await self.http.close()


DELIVERY_JOB = web.AppKey("webhook_delivery_job", DeliveryJob)


async def delivery_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: one delivery job per process (after the database is set up)."""
    job = DeliveryJob(app[DB], app[SETTINGS])
    app[DELIVERY_JOB] = job
    if app[SETTINGS].webhook_poll_seconds > 0:
        await job.start()
    yield
    await job.stop()
