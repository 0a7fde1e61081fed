"""What the composition root hands the transport: the events each namespace dispatches, the
connect/disconnect hooks, and what to do when another process's sockets are gone.

The transport knows no capability; ``livedesk/wiring/realtime.py`` builds this table from the
capabilities' ``events`` modules and ``app.py`` passes it to ``setup_realtime``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from livedesk.realtime.hooks import Hooks
from livedesk.realtime.process import OnShoppersGone, OnStaffGone
from livedesk.realtime.protocol import EventSpec


@dataclass(frozen=True)
class EventTable:
    shopper: dict[str, EventSpec[Any]]
    staff: dict[str, EventSpec[Any]]
    hooks: Hooks
    # Built per app: the handlers need the app (its database, its sockets).
    on_staff_gone: Callable[[web.Application], OnStaffGone]
    on_shoppers_gone: Callable[[web.Application], OnShoppersGone]
