"""GET /metrics: Prometheus text with figures read from the database, event-handling
latency from the real-time dispatcher, and access only from allowed networks or with the
token."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from livedesk.app import create_app
from livedesk.kit.db import Database
from livedesk.models import Role
from livedesk.models.recordings import ConsentPolicy, Recording, RecordingStatus
from livedesk.settings import Settings


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_from_loopback(live: Any, client: Any, make_staff: Any, db: Database) -> None:
    advisor = await make_staff(Role.ADVISOR)
    await live.staff(advisor)
    shopper = await live.shopper()
    joined = await shopper.ok("queue.join", {"kind": "video", "if_nominated_unavailable": "anyone"})
    async with db.transaction() as session:
        session.add(
            Recording(
                consultation_id=uuid.UUID(joined["id"]),
                shopper_id=uuid.UUID(joined["shopper_id"]),
                status=RecordingStatus.RECORDING,
                policy=ConsentPolicy.ASK,
            )
        )
    await shopper.call("no.such.event", {})

    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = _samples(await response.text())
    assert samples[("livedesk_connections", (("namespace", "shopper"),))] == 1
    assert samples[("livedesk_connections", (("namespace", "staff"),))] == 1
    assert samples[("livedesk_process_connections", (("namespace", "shopper"),))] == 1
    assert samples[("livedesk_queue_length", ())] == 1
    assert samples[("livedesk_active_calls", (("kind", "video"),))] == 0
    assert samples[("livedesk_advisors", (("status", "available"),))] == 1
    assert samples[("livedesk_recordings", (("status", "recording"),))] == 1
    assert samples[("livedesk_recordings", (("status", "processing"),))] == 0
    joined = (("event", "queue.join"), ("namespace", "/shopper"))
    assert samples[("livedesk_event_handling_seconds_count", joined)] == 1
    assert samples[("livedesk_event_handling_seconds_sum", joined)] > 0
    # Unknown event names share one label: a client cannot grow the metric.
    unknown = (("event", "(unknown)"), ("namespace", "/shopper"))
    assert samples[("livedesk_event_handling_seconds_count", unknown)] == 1


class TestTokenOnly:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"metrics_allow": [], "metrics_token": SecretStr("s3cret-scrape")})

    async def test_needs_the_token(self, client: Any) -> None:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-scrape"}):
            response = await client.get("/metrics", headers=headers)
            assert response.status == 403, headers
            error = (await response.json())["error"]
            assert error["code"] == "metrics_forbidden"
            assert "LIVEDESK_METRICS_ALLOW" in error["message"]
        ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert ok.status == 200
        assert "livedesk_queue_length" in await ok.text()


class TestOtherNetworkNoToken:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        # Allowed: some other network, not this test's loopback; no token configured.
        return settings.model_copy(update={"metrics_allow": ["10.0.0.0/8"]})

    async def test_refused(self, client: Any) -> None:
        response = await client.get("/metrics", headers={"Authorization": "Bearer "})
        assert response.status == 403


def test_a_bad_network_stops_the_app(settings: Settings) -> None:
    with pytest.raises(ValueError, match="not-a-network"):
        create_app(settings.model_copy(update={"metrics_allow": ["not-a-network"]}))


def test_each_app_has_its_own_registry(settings: Settings) -> None:
    # Two apps in one process (as tests and the benchmark make) must not collide.
    create_app(settings)
    create_app(settings)
