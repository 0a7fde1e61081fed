"""How long the server takes to handle each client event, for the metrics endpoint.

The real-time dispatcher (``realtime/protocol.py``) reports every event it handles here;
the histogram lives in the app's own Prometheus registry, so apps never share one.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram

# Socket.IO handlers answer in milliseconds; a slow database turns that into seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class EventTimer:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram(
            "livedesk_event_handling_seconds",
            "Time to handle one Socket.IO client event, from receipt to its ack",
            ["namespace", "event"],
            buckets=BUCKETS,
            registry=registry,
        )

        # The label children, kept: ``labels()`` takes a lock and builds a key on every call,
        # and this runs for every client event.
        self._children: dict[tuple[str, str], Any] = {}

    def observe(self, namespace: str, event: str, seconds: float) -> None:
        child = self._children.get((namespace, event))
        if child is None:
            child = self._children[(namespace, event)] = self.histogram.labels(namespace, event)
        child.observe(seconds)


EVENT_TIMER = web.AppKey("event_timer", EventTimer)
