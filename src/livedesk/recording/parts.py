"""The recorder's bookkeeping in the database: each leg's part (noted when the leg is
answered, stored when it ends), the claim that lets one process join a stopped recording, and
the recordings the watcher must stop or join."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.clock import utcnow
from livedesk.models import Consultation, ConsultationStatus, Recording, RecordingPart, RecordingStatus
from livedesk.recording.service import OPEN

RS = RecordingStatus


def part_key(recording_id: uuid.UUID, process_id: str, name: str) -> str:
    """The part's storage key names the process writing it (``…/parts/<process>/<file>``)."""
    return f"recordings/{recording_id}/parts/{process_id}/{name}"


def writer_of(storage_key: str) -> str | None:
    """The process that writes the part (None for a key of the older flat form)."""
    pieces = storage_key.split("/")
    if len(pieces) == 5 and pieces[2] == "parts":
        return pieces[3]
    return None


async def note_start(session: AsyncSession, part_id: uuid.UUID, started_at: datetime) -> None:
    """The wall-clock time of the part's first frame, as soon as the file opens."""
    await session.execute(
        update(RecordingPart)
        .where(RecordingPart.id == part_id, RecordingPart.stored.is_(False))
        .values(started_at=started_at)
    )


async def open_part(
    session: AsyncSession, recording_id: uuid.UUID, participant: str, storage_key: str
) -> uuid.UUID | None:
    """A leg was answered: note its part, to be stored when the leg ends. None (nothing
    written) if the recording stopped meanwhile."""
    recording = await session.get(Recording, recording_id, with_for_update=True)
    if recording is None or recording.status != RS.RECORDING:
        return None
    part = RecordingPart(
        id=uuid.uuid4(),
        recording_id=recording_id,
        participant=participant,
        storage_key=storage_key,
        started_at=utcnow(),
        duration_ms=0,
        size_bytes=0,
        video_frames=0,
        audio_frames=0,
        stored=False,
    )
    session.add(part)
    await session.flush()
    return part.id


async def store_part(
    session: AsyncSession,
    part_id: uuid.UUID,
    *,
    started_at: datetime,
    duration_ms: int,
    size_bytes: int,
    video_frames: int,
    audio_frames: int,
) -> bool:
    """The part's file is stored; False (the caller deletes the file) if the recording was
    refused or erased meanwhile."""
    part = await session.get(RecordingPart, part_id, with_for_update=True)
    if part is None:
        return False
    recording = await session.get(Recording, part.recording_id)
    if recording is None or recording.status not in (RS.RECORDING, RS.PROCESSING):
        return False
    part.started_at = started_at
    part.duration_ms = duration_ms
    part.size_bytes = size_bytes
    part.video_frames = video_frames
    part.audio_frames = audio_frames
    part.stored = True
    return True


async def drop_part(session: AsyncSession, part_id: uuid.UUID) -> None:
    """The leg ended without writing anything."""
    await session.execute(delete(RecordingPart).where(RecordingPart.id == part_id))


async def claim_join(
    session: AsyncSession, recording_id: uuid.UUID, now: datetime, stale_after: timedelta
) -> bool:
    """Take the job of joining a stopped recording's parts: True for exactly one caller at a
    time across processes (a conditional UPDATE); a claim older than ``stale_after`` (its
    process died) can be taken over."""
    claimed = await session.execute(
        update(Recording)
        .where(
            Recording.id == recording_id,
            Recording.status == RS.PROCESSING,
            (Recording.joining_since.is_(None)) | (Recording.joining_since < now - stale_after),
        )
        .values(joining_since=now)
        .returning(Recording.id)
    )
    return claimed.one_or_none() is not None


async def unclaimed_processing(
    session: AsyncSession, now: datetime, stale_after: timedelta
) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(Recording.id).where(
            Recording.status == RS.PROCESSING,
            (Recording.joining_since.is_(None)) | (Recording.joining_since < now - stale_after),
        )
    )
    return list(rows)


async def running_after_call_end(session: AsyncSession) -> list[uuid.UUID]:
    """Recordings still open whose consultation is no longer an active call."""
    rows = await session.scalars(
        select(Recording.id)
        .join(Consultation, Consultation.id == Recording.consultation_id)
        .where(Recording.status.in_(OPEN), Consultation.status != ConsultationStatus.ACTIVE)
    )
    return list(rows)


async def parts_of(session: AsyncSession, recording_id: uuid.UUID) -> list[RecordingPart]:
    rows = await session.scalars(
        select(RecordingPart)
        .where(RecordingPart.recording_id == recording_id)
        .order_by(RecordingPart.started_at)
    )
    return list(rows)
