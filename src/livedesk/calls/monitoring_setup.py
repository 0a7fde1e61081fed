"""How call monitoring plugs into ``create_app``: the hub, the operations its holder runs for
the other processes (``monitoring_events.register_operations``), and its watcher."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from livedesk.calls.legs import LEGS, Leg
from livedesk.calls.monitoring import MONITORING, WATCH_SECONDS, MonitoringHub
from livedesk.calls.monitoring_events import register_operations
from livedesk.calls.placement import PLACEMENT
from livedesk.kit.background import BACKGROUND
from livedesk.kit.periodic import Periodic


async def monitoring_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the hub and its watcher (after the leg registry, which recording sets up)."""
    hub = MonitoringHub(app, app[LEGS])
    app[MONITORING] = hub
    register_operations(app)
    placement = app[PLACEMENT]
    placement.on_moved.append(hub.tell_moved)

    async def release_when_idle(leg: Leg) -> None:
        # The call needs this process no more: the next leg or monitor may be placed anywhere.
        if not hub.legs.legs_of(leg.call_id) and not hub.of_call(leg.call_id):
            await placement.release(leg.call_id)

    hub.legs.closers.append(release_when_idle)
    Periodic("monitoring.watch", hub.check_calls, every=WATCH_SECONDS).spawn(app[BACKGROUND])
    yield
    await hub.close_all()
