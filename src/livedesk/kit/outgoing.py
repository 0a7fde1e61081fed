"""The base of outgoing event schemas: each capability lists its server→client events, one
schema per event name, in its ``outgoing.py`` (``tests/integration/test_outgoing_events.py``
checks every event sent against them, with its exact recipients)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class OutgoingEvent(BaseModel):
    """An event's payload as clients receive it: nothing more, nothing less."""

    model_config = ConfigDict(extra="forbid")


Schemas = dict[str, type[BaseModel]]
