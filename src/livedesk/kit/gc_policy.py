"""The garbage collector's settings for a long-running server process.

With thousands of sockets open, one process holds millions of container objects, and a full
(generation 2) collection walks them all: 100–470 ms with the event loop stopped, measured at
2,000 sockets (bench/realtime.py), which is every chat message in that moment delivered late.
Two standard remedies, applied by ``livedesk serve`` and ``livedesk demo`` only (tests build
many apps in one process and keep the defaults):

* ``gc.freeze()`` once the app has started: everything built at startup (modules, models,
  schemas, the route table) moves to a permanent generation that collections no longer walk;
* a larger first-generation threshold: a message's short-lived objects are collected
  young instead of being promoted, with whatever else is alive at that moment, into the
  older generations that full collections walk.
"""

from __future__ import annotations

import gc

from aiohttp import web

# Allocations between young collections (CPython's default is 700).
YOUNG_THRESHOLD = 10_000


async def _freeze_startup_objects(_app: web.Application) -> None:
    gc.collect()
    gc.freeze()


def apply(app: web.Application) -> None:
    """Set the collector up for serving ``app``; call before the app starts."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    # After the app's own startup (aiohttp runs on_startup callbacks in order, the cleanup
    # contexts first), so what it built at startup is frozen too.
    app.on_startup.append(_freeze_startup_objects)
