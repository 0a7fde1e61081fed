"""The payments capability's server→client events, one schema per event name."""

from __future__ import annotations

from pydantic import ConfigDict

from livedesk.kit.outgoing import Schemas
from livedesk.payments.schemas import PaymentRequestOut

PAYMENT_UPDATED = "payment.updated"


class PaymentUpdated(PaymentRequestOut):
    """To the consultation's parties; never carries the client secret."""

    model_config = ConfigDict(extra="forbid")


OUTGOING: Schemas = {PAYMENT_UPDATED: PaymentUpdated}
