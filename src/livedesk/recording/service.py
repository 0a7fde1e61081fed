"""The rules of recording a call: who may start and stop it, consent, what lands on the
timeline, who may play it back, retention and erasure.

Lifecycle: the advisor starts → ``awaiting_consent`` (policy *ask*) or ``recording`` (policy
*announce*) → the shopper accepts (→ ``recording``) or refuses (→ ``refused``: nothing is
kept) → the advisor stops, or the call ends → ``processing`` (the server joins the
participant files) → ``ready`` (one playable file) or ``failed``. Every consent or refusal is
stored with its time. The media side (legs, files) is in ``recorder.py``; nothing here touches
media, and nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk import audit
from livedesk.identity import Actor, Parties, Principal, ShopperActor, authorise_party
from livedesk.kit.clock import utcnow
from livedesk.kit.db import after_commit
from livedesk.kit.errors import Conflict, Forbidden, NotFound
from livedesk.kit.logging import get_logger
from livedesk.models import (
    ConsentDecision,
    ConsentPolicy,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    Recording,
    RecordingConsent,
    RecordingPart,
    RecordingStatus,
    TimelineKind,
)
from livedesk.outbox import webhooks
from livedesk.realtime import rooms
from livedesk.realtime.emit import emit
from livedesk.recording import gaps as recording_gaps
from livedesk.recording import storage
from livedesk.recording.outgoing import RECORDING_UPDATED
from livedesk.recording.schemas import ConsentOut, GapOut, RecordingOut
from livedesk.timeline import append_event

log = get_logger("livedesk.recording")

RS = RecordingStatus
OPEN = (RS.AWAITING_CONSENT, RS.RECORDING)
# Ended recordings, which the retention job removes once expired.
ENDED = (RS.READY, RS.FAILED, RS.REFUSED)


def out(recording: Recording, consents: Sequence[RecordingConsent]) -> RecordingOut:
    # A ready recording keeps its gaps in ``error`` (recording/gaps.py): said as
    # ``incomplete`` and ``gaps``, never as an error.
    found = recording_gaps.decode(recording.error) if recording.status == RS.READY else None
    return RecordingOut(
        id=recording.id,
        consultation_id=recording.consultation_id,
        shopper_id=recording.shopper_id,
        advisor_id=recording.advisor_id,
        status=recording.status,
        policy=recording.policy,
        with_video=recording.with_video,
        requested_at=recording.requested_at,
        started_at=recording.started_at,
        stopped_at=recording.stopped_at,
        ready_at=recording.ready_at,
        expires_at=recording.expires_at,
        duration_ms=recording.duration_ms,
        size_bytes=recording.size_bytes,
        error=None if found is not None else recording.error,
        incomplete=found is not None,
        gaps=[GapOut(participant=g.participant, from_ms=g.from_ms, to_ms=g.to_ms) for g in found or []],
        consents=[
            ConsentOut(participant=c.participant, decision=c.decision, decided_at=c.decided_at)
            for c in sorted(consents, key=lambda c: c.decided_at)
        ],
        media_url=f"/api/v1/recordings/{recording.id}/media" if recording.status == RS.READY else None,
    )


async def consents_of(session: AsyncSession, recording_id: uuid.UUID) -> list[RecordingConsent]:
    rows = await session.scalars(
        select(RecordingConsent).where(RecordingConsent.recording_id == recording_id)
    )
    return list(rows)


async def announce(session: AsyncSession, recording: Recording) -> RecordingOut:
    """Tell both parties (all their tabs) the recording's state, after the commit."""
    payload = out(recording, await consents_of(session, recording.id))
    emit(
        session,
        RECORDING_UPDATED,
        payload,
        room=rooms.shopper_of(recording.shopper_id, recording.consultation_id),
        namespace=rooms.SHOPPER_NS,
    )
    if recording.advisor_id is not None:
        emit(
            session,
            RECORDING_UPDATED,
            payload,
            room=rooms.staff(recording.advisor_id),
            namespace=rooms.STAFF_NS,
        )
    return payload


async def _timeline(
    session: AsyncSession, recording: Recording, summary: str, actor: uuid.UUID | None
) -> None:
    await append_event(
        session,
        recording.shopper_id,
        TimelineKind.RECORDING,
        summary,
        {
            "recording_id": recording.id,
            "status": recording.status.value,
            "duration_ms": recording.duration_ms,
            "size_bytes": recording.size_bytes,
            **_gap_data(recording),
        },
        actor_staff_id=actor,
        consultation_id=recording.consultation_id,
        ref_id=str(recording.id),
    )


def _gap_data(recording: Recording) -> dict[str, Any]:
    found = recording_gaps.decode(recording.error) if recording.status == RS.READY else None
    if found is None:
        return {}
    return {"incomplete": True, "gaps": [g.__dict__ for g in found]}


def _consent(
    recording: Recording, participant: str, decision: ConsentDecision, staff_id: uuid.UUID | None
) -> RecordingConsent:
    return RecordingConsent(
        id=uuid.uuid4(),
        recording_id=recording.id,
        participant=participant,
        staff_id=staff_id,
        decision=decision,
        decided_at=utcnow(),
    )


async def open_for_consultation(session: AsyncSession, consultation_id: uuid.UUID) -> Recording | None:
    """The consultation's recording that is waiting for consent or running, if any."""
    row = await session.scalars(
        select(Recording)
        .where(Recording.consultation_id == consultation_id, Recording.status.in_(OPEN))
        .order_by(Recording.requested_at.desc())
        .limit(1)
    )
    return row.first()


async def start(
    session: AsyncSession,
    consultation_id: uuid.UUID,
    staff: Principal,
    policy: str,
) -> RecordingOut:
    """The assigned advisor starts recording an active call. Under *ask* it waits for the
    shopper's consent; under *announce* it records at once. The advisor's own consent is
    stored now (starting it is consenting)."""
    c = await session.get(Consultation, consultation_id, with_for_update=True)
    if c is None:
        raise NotFound("No such consultation", code="consultation_not_found")
    if c.advisor_id != staff.staff_id:
        raise Forbidden("Only the consultation's advisor may record it", code="not_a_party")
    if c.status != ConsultationStatus.ACTIVE or c.kind == ConsultationKind.CHAT:
        raise Conflict("Only an active call can be recorded", code="not_in_call")
    if await open_for_consultation(session, c.id) is not None:
        raise Conflict("This call is already being recorded", code="already_recording")
    now = utcnow()
    ask = ConsentPolicy(policy) == ConsentPolicy.ASK
    recording = Recording(
        id=uuid.uuid4(),
        consultation_id=c.id,
        shopper_id=c.shopper_id,
        advisor_id=c.advisor_id,
        status=RS.AWAITING_CONSENT if ask else RS.RECORDING,
        policy=ConsentPolicy(policy),
        with_video=c.kind == ConsultationKind.VIDEO,
        requested_at=now,
        started_at=None if ask else now,
    )
    session.add(recording)
    await session.flush()
    session.add(_consent(recording, "advisor", ConsentDecision.ACCEPTED, staff.staff_id))
    if not ask:
        session.add(_consent(recording, "shopper", ConsentDecision.ANNOUNCED, None))
    await session.flush()
    await _timeline(
        session,
        recording,
        "recording requested (asking consent)" if ask else "recording started",
        staff.staff_id,
    )
    return await announce(session, recording)


def _parties(recording: Recording) -> Parties:
    # The call's shopper and the advisor who recorded it.
    return Parties(recording.consultation_id, recording.shopper_id, recording.advisor_id)


async def _load_for_party(session: AsyncSession, recording_id: uuid.UUID, actor: Actor) -> Recording:
    recording = await session.get(Recording, recording_id, with_for_update=True)
    if recording is None:
        raise NotFound("No such recording", code="recording_not_found")
    authorise_party(actor, _parties(recording), write=True, what="recording")
    return recording


@dataclass(frozen=True)
class Change:
    """A state change and what the media side must do after the commit."""

    recording: RecordingOut
    discard_media: bool = False  # a refusal: drop whatever was written
    finish_media: bool = False  # stopped: close the legs and join the files


async def consent(
    session: AsyncSession,
    recording_id: uuid.UUID,
    accept: bool,
    *,
    shopper: ShopperActor,
    retention_days: int,
) -> Change:
    """The shopper's answer. Accepting a recording that waits for consent starts it; refusing
    at any time before it ends stops it and nothing is kept."""
    recording = await _load_for_party(session, recording_id, shopper)
    if recording.status not in OPEN:
        raise Conflict(
            f"The recording is {recording.status.value}; it can no longer be answered", code="not_open"
        )
    now = utcnow()
    session.add(
        _consent(recording, "shopper", ConsentDecision.ACCEPTED if accept else ConsentDecision.REFUSED, None)
    )
    discard = False
    if accept:
        if recording.status == RS.AWAITING_CONSENT:
            recording.status = RS.RECORDING
            recording.started_at = now
            summary = "recording consented and started"
        else:
            summary = "recording consented"
    else:
        discard = recording.status == RS.RECORDING
        recording.status = RS.REFUSED
        recording.stopped_at = now
        recording.expires_at = now + timedelta(days=retention_days)
        summary = "recording refused by the shopper"
    await session.flush()
    await _timeline(session, recording, summary, None)
    return Change(await announce(session, recording), discard_media=discard)


async def stop(
    session: AsyncSession,
    recording_id: uuid.UUID,
    staff: Principal,
    *,
    retention_days: int,
) -> Change:
    """The advisor stops. A recording still waiting for consent is withdrawn (nothing was
    recorded); a running one goes to processing."""
    recording = await _load_for_party(session, recording_id, staff)
    return await _stop(session, recording, staff.staff_id, "stopped by the advisor", retention_days)


async def stop_for_call_end(
    session: AsyncSession, recording_id: uuid.UUID, *, retention_days: int
) -> Change | None:
    """The call ended while recording: stop as the advisor would have (None if it already ended)."""
    recording = await session.get(Recording, recording_id, with_for_update=True)
    if recording is None or recording.status not in OPEN:
        return None
    c = await session.get(Consultation, recording.consultation_id)
    if c is not None and c.status == ConsultationStatus.ACTIVE:
        return None
    return await _stop(session, recording, None, "stopped: the call ended", retention_days)


async def _stop(
    session: AsyncSession,
    recording: Recording,
    actor: uuid.UUID | None,
    why: str,
    retention_days: int,
) -> Change:
    if recording.status not in OPEN:
        raise Conflict(f"The recording is {recording.status.value}, not running", code="not_open")
    now = utcnow()
    recording.stopped_at = now
    finish = recording.status == RS.RECORDING
    if finish:
        recording.status = RS.PROCESSING
    else:
        recording.status = RS.FAILED
        recording.error = "withdrawn before consent"
        recording.expires_at = now + timedelta(days=retention_days)
    await session.flush()
    await _timeline(session, recording, f"recording {why}", actor)
    return Change(await announce(session, recording), finish_media=finish)


async def check_leg_allowed(
    session: AsyncSession, recording_id: uuid.UUID, actor: Actor
) -> tuple[str, Recording]:
    """Which participant ``actor`` is and the recording, if it may send media now."""
    recording = await session.get(Recording, recording_id)
    if recording is None:
        raise NotFound("No such recording", code="recording_not_found")
    authorise_party(actor, _parties(recording), write=True, what="recording")
    participant = "shopper" if isinstance(actor, ShopperActor) else "advisor"
    if recording.status != RS.RECORDING:
        raise Conflict(f"The recording is {recording.status.value}; no media is taken", code="not_recording")
    return participant, recording


async def finish(
    session: AsyncSession,
    recording_id: uuid.UUID,
    *,
    storage_key: str | None,
    duration_ms: int,
    size_bytes: int,
    error: str | None,
    retention_days: int,
    gaps: list[recording_gaps.Gap] | None = None,
) -> Recording | None:
    """The joined file is stored (or joining failed): ``ready`` with its duration and size on
    the timeline and a ``recording.ready`` webhook, or ``failed``. A ready recording with
    ``gaps`` (a participant missing for a while) is kept as incomplete, the gaps with it. The
    parts' rows go (their files are the caller's to delete). None if the recording is no longer processing."""
    recording = await session.get(Recording, recording_id, with_for_update=True)
    if recording is None or recording.status != RS.PROCESSING:
        return None
    now = utcnow()
    ended = recording.stopped_at or now
    recording.expires_at = ended + timedelta(days=retention_days)
    if storage_key is not None and error is None:
        recording.status = RS.READY
        recording.storage_key = storage_key
        recording.duration_ms = duration_ms
        recording.size_bytes = size_bytes
        recording.ready_at = now
        recording.error = recording_gaps.encode(gaps or [])
        summary = f"recording ready ({duration_ms // 1000} s, {size_bytes // 1024} KiB)"
        if gaps:
            missing = ", ".join(
                f"{g.participant} {g.from_ms / 1000:.1f}–{g.to_ms / 1000:.1f} s" for g in gaps
            )
            summary = f"recording ready but incomplete ({duration_ms // 1000} s; missing: {missing})"[:300]
    else:
        recording.status = RS.FAILED
        recording.error = (error or "no media")[:300]
        summary = "recording failed: " + recording.error
    await session.execute(delete(RecordingPart).where(RecordingPart.recording_id == recording_id))
    await session.flush()
    await _timeline(session, recording, summary, None)
    payload = await announce(session, recording)
    if recording.status == RS.READY:
        await _webhook_ready(session, payload)
    return recording


async def _webhook_ready(session: AsyncSession, payload: RecordingOut) -> None:
    await webhooks.enqueue(
        session,
        webhooks.RECORDING_READY,
        {
            "recording_id": payload.id,
            "consultation_id": payload.consultation_id,
            "shopper_id": payload.shopper_id,
            "advisor_id": payload.advisor_id,
            "duration_ms": payload.duration_ms,
            "size_bytes": payload.size_bytes,
            "incomplete": payload.incomplete,
            "gaps": [g.model_dump() for g in payload.gaps],
            "started_at": payload.started_at,
            "stopped_at": payload.stopped_at,
        },
    )


# --- retention and erasure ------------------------------------------------------------------


async def expired_ids(session: AsyncSession, now: datetime, limit: int = 100) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(Recording.id)
        .where(Recording.status.in_(ENDED), Recording.expires_at <= now)
        .order_by(Recording.expires_at)
        .limit(limit)
    )
    return list(rows)


async def delete_expired(session: AsyncSession, recording_id: uuid.UUID, now: datetime) -> str | None:
    """Delete one expired recording's row (consents with it) and audit it — exactly once: the
    conditional DELETE only matches for the one transaction that gets there first (PostgreSQL
    row lock; SQLite's write lock). Returns the storage key to delete after the commit, ""
    for a recording without a file, None if another process already took it."""
    claimed = await session.execute(
        update(Recording)
        .where(Recording.id == recording_id, Recording.status.in_(ENDED), Recording.expires_at <= now)
        .values(status=RS.DELETING)
        .returning(Recording.storage_key, Recording.shopper_id, Recording.status)
    )
    row = claimed.one_or_none()
    if row is None:
        return None
    await _delete_rows(session, recording_id, row.storage_key, row.shopper_id, None, "recording.expired")
    return row.storage_key or ""


async def _delete_rows(
    session: AsyncSession,
    recording_id: uuid.UUID,
    storage_key: str | None,
    shopper_id: uuid.UUID,
    actor: uuid.UUID | None,
    action: str,
) -> list[str]:
    part_keys = list(
        await session.scalars(
            select(RecordingPart.storage_key).where(RecordingPart.recording_id == recording_id)
        )
    )
    await session.execute(delete(Recording).where(Recording.id == recording_id))
    audit.record(
        session,
        actor=actor,
        action=action,
        target_type="recording",
        target_id=recording_id,
        details={"shopper_id": str(shopper_id), "storage_key": storage_key or ""},
    )
    return [k for k in [storage_key, *part_keys] if k]


def delete_files_after_commit(
    session: AsyncSession, store: storage.RecordingStore | None, keys: list[str]
) -> None:
    if not keys:
        return

    async def remove() -> None:
        if store is None:
            log.error("recording files left behind: no store configured", keys=keys)
            return
        for key in keys:
            try:
                await store.delete(key)
            except Exception:
                # The row and its audit entry are gone for good; the key is in the audit log
                # for an operator to remove by hand.
                log.exception("recording file not deleted", storage_key=key)

    after_commit(session, remove)


async def erase_for_shopper(
    session: AsyncSession, shopper_id: uuid.UUID, *, actor_staff_id: uuid.UUID | None = None
) -> int:
    """Delete every recording of the shopper — rows now (in the caller's transaction, each
    audited), files once it commits. Returns how many recordings were deleted. For erasure
    requests (customer history)."""
    rows = list(
        await session.scalars(select(Recording).where(Recording.shopper_id == shopper_id).with_for_update())
    )
    keys: list[str] = []
    for recording in rows:
        keys += await _delete_rows(
            session, recording.id, recording.storage_key, shopper_id, actor_staff_id, "recording.erased"
        )
    delete_files_after_commit(session, storage.default_store(), keys)
    return len(rows)
