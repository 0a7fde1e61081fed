"""Which capability handles which Socket.IO event, and which hooks run at connect and
disconnect — the one list to read to know the whole real-time surface.

Part of the composition root: ``app.py`` passes ``event_table()`` to
``realtime.server.setup_realtime``, so the transport (``realtime/``) imports no capability."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from livedesk.calls import events as call_events
from livedesk.calls import monitoring_events
from livedesk.consultations import chat_events
from livedesk.consultations import events as consultation_events
from livedesk.realtime.hooks import Hooks
from livedesk.realtime.process import OnShoppersGone, OnStaffGone
from livedesk.realtime.protocol import EventSpec, specs_by_name
from livedesk.realtime.table import EventTable
from livedesk.recording import events as recording_events
from livedesk.staff import events as staff_events_module
from livedesk.supervision import events as supervision_events


def shopper_events() -> dict[str, EventSpec[Any]]:
    return specs_by_name(
        consultation_events.SHOPPER,
        chat_events.SHOPPER,
        call_events.SHOPPER,
        recording_events.SHOPPER,
        monitoring_events.SHOPPER,
    )


def staff_events() -> dict[str, EventSpec[Any]]:
    return specs_by_name(
        staff_events_module.STAFF,
        consultation_events.STAFF,
        chat_events.STAFF,
        call_events.STAFF,
        supervision_events.STAFF,
        recording_events.STAFF,
        monitoring_events.STAFF,
    )


def hooks() -> Hooks:
    return Hooks(
        on_connect=[staff_events_module.on_connect, consultation_events.on_connect],
        on_disconnect=[
            staff_events_module.on_disconnect,
            consultation_events.on_disconnect,
            monitoring_events.on_disconnect,
        ],
    )


def shoppers_gone_handler(app: web.Application) -> OnShoppersGone:
    async def handle(shopper_ids: set[uuid.UUID]) -> None:
        # Their process died: they had the whole sweep interval to reconnect elsewhere.
        await consultation_events.abandon_after_grace(app, shopper_ids, 0)

    return handle


def staff_gone_handler(app: web.Application) -> OnStaffGone:
    async def handle(staff_ids: set[uuid.UUID]) -> None:
        await staff_events_module.refresh(app, staff_ids)

    return handle


def event_table() -> EventTable:
    return EventTable(
        shopper=shopper_events(),
        staff=staff_events(),
        hooks=hooks(),
        on_staff_gone=staff_gone_handler,
        on_shoppers_gone=shoppers_gone_handler,
    )
