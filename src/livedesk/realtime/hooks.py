"""Connect/disconnect hooks capabilities register (presence, rejoining consultation rooms),
so the namespaces stay free of their rules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from livedesk.realtime.protocol import EventContext

Hook = Callable[[EventContext], Awaitable[None]]


@dataclass
class Hooks:
    on_connect: list[Hook] = field(default_factory=list)
    on_disconnect: list[Hook] = field(default_factory=list)
