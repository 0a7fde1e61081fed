"""Socket.IO events of recording: start/stop (the advisor), consent (the shopper), the current
state after a reload, and the server leg's offer/answer (both parties). Handlers parse,
authorise and call the service; the media side acts only after the commit."""

from __future__ import annotations

from typing import Any

from livedesk.calls.placement import PLACEMENT
from livedesk.consultations import service as consultations
from livedesk.kit.context import DB, SETTINGS
from livedesk.realtime.protocol import EventContext, EventSpec
from livedesk.recording import service
from livedesk.recording.recorder import LEG_OP, apply_change, attach_running
from livedesk.recording.schemas import (
    Consent,
    ConsultationRecordingRef,
    LegAnswer,
    LegOffer,
    RecordingRef,
    StartRecording,
)


async def start(ctx: EventContext, payload: StartRecording) -> dict[str, Any]:
    staff = ctx.require_staff()
    settings = ctx.app[SETTINGS]
    async with ctx.app[DB].transaction() as session:
        result = await service.start(
            session, payload.consultation_id, staff, settings.recording_consent_policy
        )
    if result.status.value == "recording":
        await attach_running(ctx.app, result.consultation_id, result.id)
    return result.model_dump(mode="json")


async def stop(ctx: EventContext, payload: RecordingRef) -> dict[str, Any]:
    staff = ctx.require_staff()
    async with ctx.app[DB].transaction() as session:
        change = await service.stop(
            session,
            payload.recording_id,
            staff,
            retention_days=ctx.app[SETTINGS].recording_retention_days,
        )
    await apply_change(ctx.app, change)
    return change.recording.model_dump(mode="json")


async def consent(ctx: EventContext, payload: Consent) -> dict[str, Any]:
    shopper = ctx.require_shopper()
    async with ctx.app[DB].transaction() as session:
        change = await service.consent(
            session,
            payload.recording_id,
            payload.accept,
            shopper=shopper,
            retention_days=ctx.app[SETTINGS].recording_retention_days,
        )
    await apply_change(ctx.app, change)
    if change.recording.status.value == "recording":
        await attach_running(ctx.app, change.recording.consultation_id, change.recording.id)
    return change.recording.model_dump(mode="json")


async def current(ctx: EventContext, payload: ConsultationRecordingRef) -> dict[str, Any] | None:
    """The consultation's running (or consent-awaiting) recording, for a page that reloads."""
    async with ctx.app[DB].read() as session:
        c = await consultations.load_for_party(session, payload.consultation_id, ctx.actor, write=False)
        recording = await service.open_for_consultation(session, c.id)
        if recording is None:
            return None
        return service.out(recording, await service.consents_of(session, recording.id)).model_dump(
            mode="json"
        )


async def leg_offer(ctx: EventContext, payload: LegOffer) -> dict[str, Any]:
    """A participant's browser offers its send-only leg; the answer comes back in the ack."""
    async with ctx.app[DB].read() as session:
        participant, recording = await service.check_leg_allowed(session, payload.recording_id, ctx.actor)
    # Answered where the call's legs live (calls/placement.py), whichever process this is.
    answer = await ctx.app[PLACEMENT].run(
        recording.consultation_id,
        LEG_OP,
        {"recording_id": str(recording.id), "participant": participant, "sdp": payload.sdp},
    )
    return LegAnswer(
        type="answer", sdp=answer["sdp"], participant=participant, placement=answer["placement"]
    ).model_dump(mode="json")


SHOPPER: list[EventSpec[Any]] = [
    EventSpec("recording.consent", Consent, consent),
    EventSpec("recording.current", ConsultationRecordingRef, current),
    EventSpec("leg.offer", LegOffer, leg_offer),
]
STAFF: list[EventSpec[Any]] = [
    EventSpec("recording.start", StartRecording, start),
    EventSpec("recording.stop", RecordingRef, stop),
    EventSpec("recording.current", ConsultationRecordingRef, current),
    EventSpec("leg.offer", LegOffer, leg_offer),
]
