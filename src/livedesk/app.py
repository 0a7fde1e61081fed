"""The composition root: ``create_app(settings)`` builds and wires everything."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from livedesk import audit
from livedesk.booking import setup as booking
from livedesk.calls import setup as calls
from livedesk.catalogue import setup as catalogue
from livedesk.consultations import setup as consultations
from livedesk.customers import setup as customers
from livedesk.integrations import setup as integrations
from livedesk.kit.background import BACKGROUND, Background
from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.db import Database, PoolBudget
from livedesk.kit.http import MAX_BODY_KEY, error_middleware, log_response
from livedesk.kit.mail import MAILER, Mailer
from livedesk.kit.ratelimit import RateLimits
from livedesk.pages import setup as pages
from livedesk.payments import setup as payments
from livedesk.realtime.server import setup_realtime
from livedesk.recording import setup as recording
from livedesk.settings import Settings
from livedesk.staff import setup as staff
from livedesk.supervision import setup as supervision
from livedesk.surveys import setup as surveys
from livedesk.system import setup as system
from livedesk.uploads import FILE_STORE, LocalFileStore
from livedesk.visitors import setup as visitors
from livedesk.wiring.handoffs import hand_offs
from livedesk.wiring.realtime import event_table


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        # No CSRF middleware: the check lives where a route reads the staff session
        # (staff.auth.current_staff), so routes that never read it are not touched by it.
        middlewares=[error_middleware],
        client_max_size=settings.max_body_bytes,
    )
    # The request log line, once the answer's status is final (see log_response).
    app.on_response_prepare.append(log_response)
    app[SETTINGS] = settings
    app[MAX_BODY_KEY] = settings.max_body_bytes
    app[MAILER] = Mailer(settings)
    # The shared upload storage (the kernel's): chat files, staff photos, history attachments.
    app[FILE_STORE] = LocalFileStore(settings.data_dir / "files")
    # The kit: what every capability uses. Cleanup contexts start in this order and stop in
    # the reverse one, so everything below stops before these do.
    app.cleanup_ctx.append(_database)
    # After the database, so it is torn down first: tasks stop before the engine closes.
    app.cleanup_ctx.append(_background)
    app.cleanup_ctx.append(audit.deferred_audit_ctx)
    app.cleanup_ctx.append(_rate_limits)

    # The capabilities, each through the one ``setup`` of its ``setup.py`` (its routes and
    # cleanup contexts; imported above under the capability's name).
    # Where the order matters, it says why; elsewhere it is only the order routes are listed in.
    system.setup(app)
    visitors.setup(app)
    staff.setup(app)
    customers.setup(app)
    # The transport, before every capability job: they are started after this process has its
    # heartbeat id and the Socket.IO fan-out, and stopped (in reverse) before those go.
    setup_realtime(app, event_table())
    # What one capability hands another (presence listeners, privacy participants, mail
    # composers): app keys only, read when the capabilities run.
    hand_offs(app)
    consultations.setup(app)
    integrations.setup(app)
    # Recording brings up the call placement and leg registry that calls' monitoring uses.
    recording.setup(app)
    calls.setup(app)
    booking.setup(app)
    surveys.setup(app)
    supervision.setup(app)
    catalogue.setup(app)
    pages.setup(app)
    payments.setup(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    budget = PoolBudget(settings.db_max_connections, settings.db_pool_timeout_seconds)
    app[DB] = Database(settings.effective_database_url, budget=budget)
    yield
    await app[DB].dispose()


async def _background(app: web.Application) -> AsyncIterator[None]:
    app[BACKGROUND] = Background()
    yield
    await app[BACKGROUND].close()


async def _rate_limits(app: web.Application) -> AsyncIterator[None]:
    app[RATE_LIMITS] = RateLimits(app[SETTINGS].redis_url)
    yield
    app[RATE_LIMITS].close()
