"""The customer timeline, a piece of the shared kernel: what happened to a shopper, appended in
the transaction of the fact itself by whichever capability it concerns, and read newest first
(``log.py``). ``live_shopper_id`` follows a merged-away profile to its survivor."""

from livedesk.timeline.log import (
    DEFAULT_PAGE,
    MAX_PAGE,
    TimelinePage,
    append_event,
    live_shopper_id,
    new_event,
    read_timeline,
)

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "TimelinePage",
    "append_event",
    "live_shopper_id",
    "new_event",
    "read_timeline",
]
