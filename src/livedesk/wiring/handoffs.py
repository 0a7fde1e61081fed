"""What one capability hands another at start-up, registered here so that neither imports a
capability that builds on it (the order is in docs/architecture.md): routing hears of presence
changes, the privacy request reaches every capability holding a shopper's data, and the
booking mail queue sends the receipts payments writes."""

from __future__ import annotations

from aiohttp import web

from livedesk.booking.mails import MAIL_COMPOSERS
from livedesk.consultations.routing_runner import kick as routing_kick
from livedesk.customers.privacy import PRIVACY_PARTICIPANTS
from livedesk.models import BookingMailKind
from livedesk.payments.receipts import receipt_mail_for
from livedesk.staff.announce import PRESENCE_LISTENERS
from livedesk.wiring.privacy import privacy_participants


def hand_offs(app: web.Application) -> None:
    # Routing may have someone new to offer to when an advisor's presence changes.
    app[PRESENCE_LISTENERS] = (routing_kick,)
    app[PRIVACY_PARTICIPANTS] = privacy_participants()
    app[MAIL_COMPOSERS] = {BookingMailKind.RECEIPT: receipt_mail_for}
