"""Where this installation's mails go, for the admin page; and saying so at start-up.

Without an SMTP server booking confirmations, receipts and survey invitations stay queued
(or, in the demo, land in the local outbox). A shop that forgot ``LIVEDESK_SMTP_HOST`` must
hear it before its shoppers wonder why no mail came.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r401, r403
from pydantic import BaseModel

from livedesk.identity import guarded
from livedesk.kit.context import SETTINGS
from livedesk.kit.http import ErrorResponse, model_json
from livedesk.kit.logging import get_logger
from livedesk.models import Role
from livedesk.settings import Settings

log = get_logger("livedesk.system")

Delivery = Literal["smtp", "outbox", "off"]


class MailStatus(BaseModel):
    # smtp: sent through LIVEDESK_SMTP_HOST; outbox: kept in the demo outbox (/demo/mail);
    # off: not sent at all (queued until an SMTP server is set).
    delivery: Delivery
    mail_from: str


def delivery_of(settings: Settings) -> Delivery:
    if settings.smtp_host:
        return "smtp"
    return "outbox" if settings.mail_outbox else "off"


@guarded(Role.ADMIN)
async def mail_status(request: web.Request) -> r200[MailStatus] | r401[ErrorResponse] | r403[ErrorResponse]:
    """Where mails go from this installation (admins).

    Tags: system
    """
    settings = request.app[SETTINGS]
    return model_json(MailStatus(delivery=delivery_of(settings), mail_from=settings.mail_from))


async def _say_at_start(app: web.Application) -> None:
    delivery = delivery_of(app[SETTINGS])
    if delivery == "off":
        log.warning(
            "no SMTP server is set (LIVEDESK_SMTP_HOST): booking confirmations, receipts and "
            "survey mails are not sent and stay queued"
        )
    elif delivery == "outbox":
        log.warning("mails go to the local demo outbox (/demo/mail), not to their recipients")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/system/mail", mail_status)
    app.on_startup.append(_say_at_start)
