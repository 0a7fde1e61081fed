"""The calls capability's server→client events, one schema per event name. The relays and
the monitoring hub's news change no stored state, so they go straight to the event sink
(no transaction to wait for), like every other event: one path out, one schema each."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from livedesk.kit.outgoing import OutgoingEvent, Schemas

CALL_SIGNAL = "call.signal"
MONITOR_VOICE = "monitor.voice"
MONITOR_STATE = "monitor.state"
MONITOR_ENDED = "monitor.ended"
MONITOR_TALK_ANSWER = "monitor.talk_answer"
LEG_MOVED = "leg.moved"


class CallSignal(OutgoingEvent):
    """To the other party only: the advisor's tabs when the shopper signals, and vice versa."""

    consultation_id: uuid.UUID
    type: Literal["offer", "answer", "candidate", "restart", "hangup"]
    data: dict[str, Any] | None
    sender: Literal["shopper", "advisor"] = Field(alias="from")


class MonitorVoice(OutgoingEvent):
    """To the party a supervisor talks to (whisper: the advisor; barge-in: both): the talk
    leg's offer, or its end."""

    consultation_id: uuid.UUID
    talk_id: uuid.UUID
    type: Literal["offer", "hangup"]
    sdp: str | None = None


class MonitorState(OutgoingEvent):
    """To both parties: open the media legs or not, and what they are told (under
    ``LIVEDESK_MONITORING_NOTIFY``; a barge-in is always said)."""

    consultation_id: uuid.UUID
    legs: bool
    listening: bool
    barge: bool


class MonitorEnded(OutgoingEvent):
    """To the supervisor's socket that listened."""

    monitor_id: uuid.UUID
    consultation_id: uuid.UUID
    reason: str


class MonitorTalkAnswer(OutgoingEvent):
    """To the supervisor's socket: the party's answer to a talk offer."""

    monitor_id: uuid.UUID
    sender: Literal["advisor", "shopper"] = Field(alias="from")
    type: Literal["answer"]
    sdp: str


class LegMoved(OutgoingEvent):
    """To both parties: the process holding the call's server legs died, offer them again."""

    consultation_id: uuid.UUID
    placement: str


OUTGOING: Schemas = {
    CALL_SIGNAL: CallSignal,
    MONITOR_VOICE: MonitorVoice,
    MONITOR_STATE: MonitorState,
    MONITOR_ENDED: MonitorEnded,
    MONITOR_TALK_ANSWER: MonitorTalkAnswer,
    LEG_MOVED: LegMoved,
}
