"""The recording capability's server→client events, one schema per event name."""

from __future__ import annotations

from pydantic import ConfigDict

from livedesk.kit.outgoing import Schemas
from livedesk.recording.schemas import RecordingOut

RECORDING_UPDATED = "recording.updated"


class RecordingUpdated(RecordingOut):
    """To both parties' tabs (the shopper's and the recording advisor's)."""

    model_config = ConfigDict(extra="forbid")


OUTGOING: Schemas = {RECORDING_UPDATED: RecordingUpdated}
