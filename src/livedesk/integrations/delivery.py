"""The webhook delivery job: claims due outbox rows, posts them signed, logs every attempt,
and retries failures with exponential backoff until ``webhook_max_attempts``.

Endpoints are isolated: each post runs in a task of its own (a pass claims and starts posts,
it never waits for them), at most ``webhook_endpoint_concurrency`` per endpoint and process,
each bounded by ``webhook_timeout_seconds``. A receiver that never answers holds only its own
slots, and the claim skips an endpoint whose slots are full, so its backlog never stands in
front of another endpoint's rows. Retries are due at ``next_attempt_at``: the process that
recorded a failure wakes itself at that time (the poll interval is only the fallback for rows
another process wrote), so the schedule is kept to the due time, not to the tick.

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
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
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
from livedesk.kit.clock import as_utc, utcnow
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.db import Database
from livedesk.kit.logging import get_logger
from livedesk.kit.periodic import Periodic
from livedesk.models.integrations import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from livedesk.outbox.webhooks import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    TEST_EVENT,
    body_of,
    signed_headers,
)
from livedesk.settings import Settings

log = get_logger("livedesk.webhooks")

BATCH = 20
# Posts in flight per process, all endpoints together (a bound on sockets and tasks).
MAX_IN_FLIGHT = 200
# Claim rounds per pass: each round skips the endpoints the previous one filled.
CLAIM_ROUNDS = 4
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
    endpoint_id: uuid.UUID | None = None
    # The secrets that sign besides ``secret``: a rotation's old one during its overlap.
    also: tuple[str, ...] = field(default=())


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Pending, its time come, and not leased to a process right now."""
    return (
        WebhookDelivery.status == DeliveryStatus.PENDING,
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
    )


def _signing_also(endpoint: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
    until = endpoint.previous_secret_until
    if endpoint.previous_secret and until is not None and as_utc(until) > now:
        return (endpoint.previous_secret,)
    return ()


async def claim(
    db: Database,
    settings: Settings,
    limit: int = BATCH,
    busy: Mapping[uuid.UUID, int] | None = None,
) -> list[Claimed]:
    """Take up to ``limit`` due rows for this process (one short transaction).

    ``busy``: posts this process has in flight per endpoint. An endpoint gets at most
    ``webhook_endpoint_concurrency`` minus its busy count; a full one is left out of the
    query, so its backlog never fills a batch that other endpoints' rows are waiting behind.
    """
    now = utcnow()
    per_endpoint = settings.webhook_endpoint_concurrency
    taken: dict[uuid.UUID, int] = dict(busy or {})
    # Most polls find nothing due: say so from a read, without the write lock a claim takes
    # (on SQLite, the lock every chat send needs too).
    async with db.read() as session:
        due = await session.scalar(select(WebhookDelivery.id).where(*_due(now)).limit(1))
    if due is None:
        return []
    lease = now + timedelta(seconds=settings.webhook_timeout_seconds * 2 + 5)
    claimed: list[Claimed] = []
    async with db.transaction() as session:
        for _ in range(CLAIM_ROUNDS):
            full = [endpoint for endpoint, n in taken.items() if n >= per_endpoint]
            stmt = (
                select(WebhookDelivery, WebhookEndpoint)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(*_due(now))
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(limit - len(claimed))
            )
            if full:
                stmt = stmt.where(WebhookDelivery.endpoint_id.not_in(full))
            if claimed:
                stmt = stmt.where(WebhookDelivery.id.not_in([c.id for c in claimed]))
            if not db.is_sqlite:
                stmt = stmt.with_for_update(skip_locked=True, of=WebhookDelivery)
            rows = (await session.execute(stmt)).all()
            skipped = False
            for delivery, endpoint in rows:
                if taken.get(endpoint.id, 0) >= per_endpoint:
                    # Left as it is (unleased): due for the next pass or another process.
                    skipped = True
                    continue
                taken[endpoint.id] = taken.get(endpoint.id, 0) + 1
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
                        endpoint_id=endpoint.id,
                        also=_signing_also(endpoint, now),
                    )
                )
            # Another round only when an endpoint's rows were passed over for want of slots:
            # rows of other endpoints may be due behind them.
            if not skipped or len(claimed) >= limit:
                break
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
        **signed_headers(item.secret, str(item.event_id), item.body, also=item.also),
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
) -> datetime | bool:
    """Write the outcome if the lease is still ours: the next try's due time when one is
    scheduled, True when the delivery is settled; False when another process took over."""
    now = utcnow()
    attempts = item.attempts + 1
    values: dict[str, object] = {
        "attempts": attempts,
        "locked_until": None,
        "last_status_code": status_code,
        "last_error": error[:ERROR_MAX],
    }
    due: datetime | None = None
    if not error:
        values.update(status=DeliveryStatus.SUCCEEDED, delivered_at=now)
    elif attempts >= settings.webhook_max_attempts or item.event_type == TEST_EVENT:
        # A test event is tried once: the admin who sent it waits for that answer.
        values.update(status=DeliveryStatus.FAILED)
    else:
        due = now + backoff(settings, attempts)
        values.update(next_attempt_at=due)
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
    return due if due is not None else True


class DeliveryJob:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        # Parsed here, at start: a bad entry stops the app instead of opening up silently.
        self.allow = parse_networks(settings.webhook_allow_networks)
        self.http: aiohttp.ClientSession | None = None
        # Posts in flight in this process, per endpoint (what the claim leaves out when full).
        self._busy: dict[uuid.UUID, int] = {}
        # The posts under way, and the passes a wake-up started.
        self._tasks: set[asyncio.Task[object]] = set()
        # The one timer that wakes the job for the earliest retry this process scheduled.
        self._wake: asyncio.TimerHandle | None = None
        self._wake_at = 0.0
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
        """Claim what is due now and start posting it (each post a task of its own, not
        awaited here: ``settle`` waits for them); how many rows were claimed."""
        if self.http is None:
            self.http = guarded_session(self.allow)
        room = MAX_IN_FLIGHT - len(self._tasks)
        if room <= 0:
            return 0
        claimed = await claim(self.db, self.settings, min(BATCH, room), busy=self._busy)
        for item in claimed:
            key = item.endpoint_id or item.id
            self._busy[key] = self._busy.get(key, 0) + 1
            task = asyncio.create_task(self._deliver(item, key), name="livedesk-webhook-post")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

    async def settle(self) -> None:
        """Wait for the posts under way (tests, and a graceful stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _deliver(self, item: Claimed, key: uuid.UUID) -> object:
        was_full = self._busy.get(key, 0) >= self.settings.webhook_endpoint_concurrency
        crowded = len(self._tasks) >= MAX_IN_FLIGHT
        try:
            assert self.http is not None
            started = time.perf_counter()
            status, error = await post(self.http, item, self.settings.webhook_timeout_seconds, self.allow)
            took = int((time.perf_counter() - started) * 1000)
            outcome = await record(self.db, self.settings, item, status, error, took)
        except Exception:
            # The lease runs out and the row is tried again (here or elsewhere).
            log.exception("webhook delivery crashed", delivery=str(item.id))
            return None
        finally:
            left = self._busy.get(key, 0) - 1
            if left > 0:
                self._busy[key] = left
            else:
                self._busy.pop(key, None)
        if outcome is False:
            log.warning("webhook lease lost before the result was written", delivery=str(item.id))
            return None
        if error:
            log.info("webhook delivery failed", delivery=str(item.id), error=error, attempt=item.attempts + 1)
        if isinstance(outcome, datetime):
            self._wake_for(outcome)
        # A slot is free where rows may have been passed over for want of one: they need not
        # wait for the tick.
        if was_full or crowded:
            self._kick_soon(0.0)
        return None

    def _wake_for(self, due: datetime) -> None:
        delay = max(0.0, (due - utcnow()).total_seconds())
        self._kick_soon(delay)

    def _kick_soon(self, delay: float) -> None:
        """A pass in ``delay`` seconds (only the earliest pending wake-up is kept: each pass
        claims everything due by then, and the posts it starts schedule the next)."""
        if not self._job.running:
            return
        loop = asyncio.get_running_loop()
        at = loop.time() + delay
        if self._wake is not None and not self._wake.cancelled() and self._wake_at <= at:
            return
        if self._wake is not None:
            self._wake.cancel()
        self._wake_at = at
        self._wake = loop.call_at(at, self._spawn_kick)

    def _spawn_kick(self) -> None:
        self._wake = None
        task = asyncio.create_task(self._job.kick(), name="livedesk-webhooks-wake")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def kick(self) -> None:
        """A pass now (something was just queued that someone is waiting for); a no-op when
        this process does not run the job."""
        self._kick_soon(0.0)

    async def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        await self._job.stop()
        # Posts under way are cut off: their leases run out and another pass (here after a
        # restart, or another process) tries them again.
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
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
