"""How recording plugs into the app: its one ``setup``, called from ``create_app``."""

from __future__ import annotations

from aiohttp import web

from livedesk.calls.legs import legs_ctx
from livedesk.calls.placement import placement_ctx
from livedesk.recording import routes
from livedesk.recording.recorder import recording_ctx


def setup(app: web.Application) -> None:
    """The placement and leg registry calls use, the recorder and its jobs, the routes.

    Legs first, so at shutdown the recorder (torn down first) stores running parts while the
    registry and the database are still there. After the realtime transport: the placement
    is keyed by this process's heartbeat id."""
    app.cleanup_ctx.append(placement_ctx)
    app.cleanup_ctx.append(legs_ctx)
    app.cleanup_ctx.append(recording_ctx)
    routes.setup_routes(app)
