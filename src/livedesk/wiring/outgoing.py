"""Every server→client Socket.IO event with its payload's schema, from each capability's
``outgoing.py``: the other half of the real-time surface (``wiring/realtime.py`` lists what
clients send). The tests check every event the app sends against it."""

from __future__ import annotations

from livedesk.calls import outgoing as calls
from livedesk.consultations import outgoing as consultations
from livedesk.kit.outgoing import Schemas
from livedesk.payments import outgoing as payments
from livedesk.recording import outgoing as recording
from livedesk.staff import outgoing as staff


def outgoing_schemas() -> Schemas:
    schemas: Schemas = {}
    for part in (
        consultations.OUTGOING,
        staff.OUTGOING,
        calls.OUTGOING,
        recording.OUTGOING,
        payments.OUTGOING,
    ):
        twice = schemas.keys() & part.keys()
        if twice:
            raise ValueError(f"outgoing events declared twice: {sorted(twice)}")
        schemas.update(part)
    return schemas
