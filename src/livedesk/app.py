"""The composition root: ``create_app(settings)`` builds and wires everything."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from livedesk import audit
from livedesk.booking.setup import setup_booking
from livedesk.calls.monitoring_setup import setup_monitoring
from livedesk.consultations import routes as consultation_routes
from livedesk.consultations.chat_redelivery import redelivery_ctx
from livedesk.consultations.chat_store import chat_store_ctx
from livedesk.consultations.file_sweep import file_sweep_ctx
from livedesk.consultations.routing_runner import runner_ctx
from livedesk.customers import history_routes
from livedesk.customers import routes as customer_routes
from livedesk.identity import TOKENS, VisitorTokens
from livedesk.integrations import routes as integration_routes
from livedesk.integrations import shop_routes
from livedesk.integrations.delivery import delivery_ctx
from livedesk.kit.background import BACKGROUND, Background
from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.db import Database
from livedesk.kit.http import MAX_BODY_KEY, error_middleware, log_response
from livedesk.kit.mail import MAILER, Mailer
from livedesk.kit.ratelimit import RateLimits
from livedesk.pages import routes as page_routes
from livedesk.payments.setup import setup_payments
from livedesk.realtime.server import setup_realtime
from livedesk.recording.setup import setup_recording
from livedesk.settings import Settings
from livedesk.staff import advisors as advisor_routes
from livedesk.staff import photos as staff_photo_routes
from livedesk.staff import routes as staff_routes
from livedesk.supervision import routes as supervision_routes
from livedesk.surveys import routes as survey_routes
from livedesk.system import audit_routes
from livedesk.system import mail_status as mail_status_routes
from livedesk.system import routes as system_routes
from livedesk.visitors import email_link as visitor_email_routes
from livedesk.visitors import routes as visitor_routes
from livedesk.wiring.handoffs import hand_offs
from livedesk.wiring.realtime import event_table


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        # No CSRF middleware: the check lives where a route reads the staff session
        # (identity.auth.current_staff), so routes that never read it are not touched by it.
        middlewares=[error_middleware],
        client_max_size=settings.max_body_bytes,
    )
    # The request log line, once the answer's status is final (see log_response).
    app.on_response_prepare.append(log_response)
    app[SETTINGS] = settings
    app[MAX_BODY_KEY] = settings.max_body_bytes
    app[MAILER] = Mailer(settings)
    app.cleanup_ctx.append(_database)
    # After the database, so it is torn down first: tasks stop before the engine closes.
    app.cleanup_ctx.append(_background)
    app.cleanup_ctx.append(audit.deferred_audit_ctx)
    app.cleanup_ctx.append(_rate_limits)
    app.cleanup_ctx.append(chat_store_ctx)

    app.cleanup_ctx.append(_visitor_tokens)
    setup_realtime(app, event_table())
    hand_offs(app)
    app.cleanup_ctx.append(redelivery_ctx)
    app.cleanup_ctx.append(runner_ctx)
    app.cleanup_ctx.append(file_sweep_ctx)
    app.cleanup_ctx.append(delivery_ctx)
    setup_recording(app)
    setup_monitoring(app)

    system_routes.setup_routes(app)
    mail_status_routes.setup_routes(app)
    audit_routes.setup_routes(app)
    visitor_routes.setup_routes(app)
    visitor_email_routes.setup_routes(app)
    staff_routes.setup_routes(app)
    staff_photo_routes.setup_routes(app)
    advisor_routes.setup_routes(app)
    customer_routes.setup_routes(app)
    history_routes.setup_routes(app)
    consultation_routes.setup_routes(app)
    integration_routes.setup_routes(app)
    shop_routes.setup_routes(app)
    setup_booking(app)
    survey_routes.setup_routes(app)
    supervision_routes.setup_routes(app)
    page_routes.setup_routes(app)
    # After the pages: the call page's CSP admits Stripe only when Stripe keys are set.
    setup_payments(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app[DB] = Database(settings.effective_database_url)
    yield
    await app[DB].dispose()


async def _visitor_tokens(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[TOKENS] = VisitorTokens(settings.secret_key.get_secret_value(), settings.visitor_token_hours * 3600)
    yield


async def _background(app: web.Application) -> AsyncIterator[None]:
    app[BACKGROUND] = Background()
    yield
    await app[BACKGROUND].close()


async def _rate_limits(app: web.Application) -> AsyncIterator[None]:
    app[RATE_LIMITS] = RateLimits(app[SETTINGS].redis_url)
    yield
    app[RATE_LIMITS].close()
