"""The staff capability's server→client events, one schema per event name."""

from __future__ import annotations

import uuid
from datetime import datetime

from livedesk.kit.outgoing import OutgoingEvent, Schemas
from livedesk.models import PresenceStatus

PRESENCE_CHANGED = "presence.changed"


class PresenceChanged(OutgoingEvent):
    """To the supervisors' board and the advisor's own tabs."""

    staff_id: uuid.UUID
    status: PresenceStatus
    chosen: PresenceStatus
    since: datetime


OUTGOING: Schemas = {PRESENCE_CHANGED: PresenceChanged}
