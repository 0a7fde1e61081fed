"""``GET /metrics`` in Prometheus' text format: connections, queue length, live calls and
chats, advisors by presence, recordings in progress, and event-handling latency.

Gauges are read from the database at scrape time, so every process reports the same
installation-wide figures (plus its own open sockets). Who may scrape: a client address in
``LIVEDESK_METRICS_ALLOW`` (CIDR list, loopback by default), or anyone presenting
``LIVEDESK_METRICS_TOKEN`` as a Bearer token; everyone else gets 403.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import Forbidden
from livedesk.kit.http import client_ip
from livedesk.models import (
    AdvisorPresence,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    PresenceStatus,
    Role,
    ShopperConnection,
    Staff,
    StaffConnection,
)
from livedesk.models.recordings import Recording, RecordingStatus
from livedesk.realtime import rooms
from livedesk.realtime.emit import SIO
from livedesk.realtime.timing import EVENT_TIMER, EventTimer
from livedesk.settings import Settings

S = ConsultationStatus
IN_PROGRESS = (RecordingStatus.RECORDING, RecordingStatus.PROCESSING)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Metrics:
    """One app's registry and the gauges set at each scrape."""

    registry: CollectorRegistry
    allow: list[Network]
    connections: Gauge
    process_connections: Gauge
    queue_length: Gauge
    active_calls: Gauge
    active_chats: Gauge
    advisors: Gauge
    recordings: Gauge


METRICS = web.AppKey("metrics", Metrics)


def parse_networks(values: list[str]) -> list[Network]:
    """The allow list; a bad entry stops the app at start rather than silently opening up."""
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"LIVEDESK_METRICS_ALLOW: '{value}' is not an address or CIDR network") from None
    return networks


def build(settings: Settings) -> tuple[Metrics, EventTimer]:
    registry = CollectorRegistry(auto_describe=True)

    def gauge(name: str, text: str, *labels: str) -> Gauge:
        return Gauge(name, text, list(labels), registry=registry)

    metrics = Metrics(
        registry=registry,
        allow=parse_networks(settings.metrics_allow),
        connections=gauge("livedesk_connections", "Open Socket.IO connections, all processes", "namespace"),
        process_connections=gauge(
            "livedesk_process_connections", "Open Socket.IO connections held by this process", "namespace"
        ),
        queue_length=gauge("livedesk_queue_length", "Consultations waiting for an advisor"),
        active_calls=gauge("livedesk_active_calls", "Voice and video calls in progress", "kind"),
        active_chats=gauge("livedesk_active_chats", "Chat-only consultations in progress"),
        advisors=gauge("livedesk_advisors", "Active advisors by presence status", "status"),
        recordings=gauge("livedesk_recordings", "Recordings being made or joined into one file", "status"),
    )
    return metrics, EventTimer(registry)


def allowed(request: web.Request, metrics: Metrics, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    offered = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if token and offered and hmac.compare_digest(offered.encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(address in network for network in metrics.allow)


async def _count(session: AsyncSession, query: Any) -> int:
    return int(await session.scalar(query) or 0)


async def refresh(app: web.Application, session: AsyncSession) -> None:
    """Set every gauge from the database and this process's sockets."""
    m = app[METRICS]
    for namespace, model in (("staff", StaffConnection), ("shopper", ShopperConnection)):
        m.connections.labels(namespace).set(await _count(session, select(func.count()).select_from(model)))
    handlers: dict[str, Any] = app[SIO].namespace_handlers
    for namespace, name in ((rooms.STAFF_NS, "staff"), (rooms.SHOPPER_NS, "shopper")):
        handler = handlers.get(namespace)
        m.process_connections.labels(name).set(len(getattr(handler, "contexts", {})))
    m.queue_length.set(
        await _count(
            session,
            select(func.count())
            .select_from(Consultation)
            .where(Consultation.status.in_((S.REQUESTED, S.QUEUED, S.OFFERED))),
        )
    )
    active = dict(
        (
            await session.execute(
                select(Consultation.kind, func.count())
                .where(Consultation.status == S.ACTIVE)
                .group_by(Consultation.kind)
            )
        ).all()
    )
    for kind in (ConsultationKind.VOICE, ConsultationKind.VIDEO):
        m.active_calls.labels(kind.value).set(active.get(kind, 0))
    m.active_chats.set(active.get(ConsultationKind.CHAT, 0))
    by_status = dict(
        (
            await session.execute(
                select(AdvisorPresence.status, func.count())
                .join(Staff, Staff.id == AdvisorPresence.staff_id)
                .where(Staff.role == Role.ADVISOR, Staff.active.is_(True))
                .group_by(AdvisorPresence.status)
            )
        ).all()
    )
    for status in PresenceStatus:
        m.advisors.labels(status.value).set(by_status.get(status, 0))
    # A dashboard reads across capabilities; these are plain counts, no rules of recording's.
    recordings = dict(
        (
            await session.execute(
                select(Recording.status, func.count())
                .where(Recording.status.in_(IN_PROGRESS))
                .group_by(Recording.status)
            )
        ).all()
    )
    for stage in IN_PROGRESS:
        m.recordings.labels(stage.value).set(recordings.get(stage, 0))


async def metrics_view(request: web.Request) -> web.Response:
    """Prometheus text exposition (not part of the JSON API, so not in the OpenAPI document)."""
    metrics = request.app[METRICS]
    if not allowed(request, metrics, request.app[SETTINGS].metrics_token.get_secret_value()):
        raise Forbidden(
            "Metrics are readable only from LIVEDESK_METRICS_ALLOW networks or with the metrics token",
            code="metrics_forbidden",
        )
    async with request.app[DB].read() as session:
        await refresh(request.app, session)
    return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_metrics(app: web.Application) -> None:
    metrics, timer = build(app[SETTINGS])
    app[METRICS] = metrics
    app[EVENT_TIMER] = timer
    app.router.add_get("/metrics", metrics_view)
