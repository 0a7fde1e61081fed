"""The media side of recording, in this process: a server leg per participant writing its
WebM part by stream copy, the parts stored when a leg ends, and the joined recording made
once the recording stops.

Flow: ``open_leg`` (a browser's offer) → a ``Leg`` (calls/legs.py) whose frames go to a
``WebmWriter``, with PLIs until the first key frame, and a part row noted → the leg ends
(stop, refusal, browser gone) → the part's file is stored → when the recording is
*processing* and none of its legs is left here, ``join`` (claimed by one process) waits for
the parts other processes still store, joins them (join.py) and marks it ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from aiortc import RTCSessionDescription

from livedesk.calls.legs import LEGS, Leg, LegRegistry, rtc_configuration
from livedesk.calls.media import WebmWriter
from livedesk.kit.background import BACKGROUND
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import Conflict
from livedesk.kit.logging import get_logger
from livedesk.models import Recording, RecordingPart, RecordingStatus
from livedesk.realtime.emit import SIO
from livedesk.recording import parts, service, storage
from livedesk.recording.join import PartFile, join_parts

log = get_logger("livedesk.recorder")

# PLIs until the first key frame arrives (browsers usually start with one anyway).
KEYFRAME_RETRY_SECONDS = 0.5
# How often the recorder checks that the calls it records are still going.
WATCH_SECONDS = 5.0
# A join waits this long for parts that another process is still storing.
PART_WAIT_SECONDS = 20.0
PART_POLL_SECONDS = 0.25
# A join claim older than this belongs to a process that died: another takes over.
JOIN_CLAIM_STALE = timedelta(minutes=10)


@dataclass
class LegWriter:
    leg: Leg
    recording_id: uuid.UUID
    part_id: uuid.UUID | None
    writer: WebmWriter


class Recorder:
    def __init__(
        self, app: web.Application, legs: LegRegistry, store: storage.RecordingStore, spool: Path
    ) -> None:
        self.app = app
        self.legs = legs
        self.store = store
        self.spool = spool
        self.writers: dict[uuid.UUID, LegWriter] = {}
        self._joining: set[uuid.UUID] = set()
        self._storing: Counter[uuid.UUID] = Counter()
        self._discarded: set[uuid.UUID] = set()

    async def open_leg(
        self, recording_id: uuid.UUID, participant: str, offer_sdp: str, *, with_video: bool, user: str
    ) -> RTCSessionDescription:
        """Answer a participant's send-only offer with a leg that records it."""
        settings = self.app[SETTINGS]
        leg = await self.legs.open(
            recording_id, participant, rtc_configuration(settings, user), on_closed=self._leg_closed
        )
        path = self.spool / str(recording_id) / f"{participant}-{leg.id}.webm"
        writer = WebmWriter(path, expect_video=with_video)
        entry = LegWriter(leg=leg, recording_id=recording_id, part_id=None, writer=writer)
        self.writers[leg.id] = entry
        leg.add_sink(writer.write)
        try:
            answer = await leg.answer(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            async with self.app[DB].transaction() as session:
                entry.part_id = await parts.open_part(
                    session, recording_id, participant, f"recordings/{recording_id}/parts/{path.name}"
                )
            if entry.part_id is None:
                raise Conflict("The recording has stopped; no media is taken", code="not_recording")
        except BaseException:
            await leg.close()
            raise
        if with_video:
            self.app[BACKGROUND].spawn(self._first_keyframe(leg, writer), name="recording.keyframe")
        return answer

    async def _first_keyframe(self, leg: Leg, writer: WebmWriter) -> None:
        # A PLI at start so the file opens on a key frame without waiting for the sender's next.
        while not writer.opened and not leg.closed.is_set():
            await leg.request_keyframe()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(leg.closed.wait(), KEYFRAME_RETRY_SECONDS)

    async def _leg_closed(self, leg: Leg) -> None:
        entry = self.writers.pop(leg.id, None)
        if entry is None:
            return
        recording_id = entry.recording_id
        # Legs close concurrently (the stop here, the browser hanging up there): a join started
        # here waits until every part being stored here is in.
        self._storing[recording_id] += 1
        try:
            written = await asyncio.to_thread(entry.writer.close)
            if entry.part_id is not None:
                if written and recording_id not in self._discarded:
                    await self._store_part(entry.part_id, leg.participant, entry.writer)
                else:
                    async with self.app[DB].transaction() as session:
                        await parts.drop_part(session, entry.part_id)
            await asyncio.to_thread(entry.writer.path.unlink, True)
        except Exception:
            log.exception("recording part not stored", recording_id=str(recording_id))
        finally:
            self._storing[recording_id] -= 1
            if not self._storing[recording_id]:
                del self._storing[recording_id]
        await self._maybe_join(recording_id)

    async def _store_part(self, part_id: uuid.UUID, participant: str, writer: WebmWriter) -> None:
        assert writer.started_wall is not None
        async with self.app[DB].read() as session:
            part = await session.get(RecordingPart, part_id)
        if part is None:
            return  # erased meanwhile
        size = await self.store.put_file(part.storage_key, writer.path)
        async with self.app[DB].transaction() as session:
            kept = await parts.store_part(
                session,
                part_id,
                started_at=datetime.fromtimestamp(writer.started_wall, UTC),
                duration_ms=writer.duration_ms,
                size_bytes=size,
                video_frames=writer.stats.video_frames,
                audio_frames=writer.stats.audio_frames,
            )
        if not kept:
            await self.store.delete(part.storage_key)
        log.info(
            "recording part stored",
            recording_id=str(part.recording_id),
            participant=participant,
            kept=kept,
            video_frames=writer.stats.video_frames,
            audio_frames=writer.stats.audio_frames,
            size=size,
        )

    async def stop(self, recording_id: uuid.UUID) -> None:
        """The recording stopped: end its legs here (their parts are stored), then join."""
        await self.legs.close_call(recording_id)
        await self._maybe_join(recording_id)

    async def discard(self, recording_id: uuid.UUID) -> None:
        """A refusal: end the legs and keep nothing."""
        self._discarded.add(recording_id)
        await self.legs.close_call(recording_id)
        async with self.app[DB].read() as session:
            keys = [p.storage_key for p in await parts.parts_of(session, recording_id)]
        for key in keys:
            await self.store.delete(key)
        shutil.rmtree(self.spool / str(recording_id), ignore_errors=True)

    async def _maybe_join(self, recording_id: uuid.UUID) -> None:
        local_busy = self.legs.legs_of(recording_id) or recording_id in self._storing
        if local_busy or recording_id in self._joining:
            return
        async with self.app[DB].read() as session:
            recording = await session.get(Recording, recording_id)
        if recording is None or recording.status != RecordingStatus.PROCESSING:
            return
        self._joining.add(recording_id)
        self.app[BACKGROUND].spawn(self.join(recording_id), name="recording.join")

    async def join(self, recording_id: uuid.UUID) -> None:
        """Join the stored parts into one file, store it and mark the recording ready — once,
        by whichever process claims it; parts that another process is still storing are waited
        for (up to ``PART_WAIT_SECONDS``)."""
        settings = self.app[SETTINGS]
        try:
            async with self.app[DB].transaction() as session:
                claimed = await parts.claim_join(session, recording_id, utcnow(), JOIN_CLAIM_STALE)
            if not claimed:
                return
            deadline = asyncio.get_running_loop().time() + PART_WAIT_SECONDS
            while True:
                async with self.app[DB].read() as session:
                    found = await parts.parts_of(session, recording_id)
                if all(p.stored for p in found) or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(PART_POLL_SECONDS)
            stored = [p for p in found if p.stored]
            key, duration, size, error = await self._join_files(recording_id, stored)
            async with self.app[DB].transaction() as session:
                done = await service.finish(
                    session,
                    self.app[SIO],
                    recording_id,
                    storage_key=key,
                    duration_ms=duration,
                    size_bytes=size,
                    error=error,
                    retention_days=settings.recording_retention_days,
                )
            if done is None and key is not None:
                # Refused or erased while we joined: keep nothing.
                await self.store.delete(key)
            for part in found:
                await self.store.delete(part.storage_key)
        finally:
            self._joining.discard(recording_id)
            shutil.rmtree(self.spool / str(recording_id), ignore_errors=True)

    async def _join_files(
        self, recording_id: uuid.UUID, parts: list[RecordingPart]
    ) -> tuple[str | None, int, int, str | None]:
        if not parts:
            return None, 0, 0, "no media arrived"
        with tempfile.TemporaryDirectory(prefix="livedesk-join-") as tmp:
            t0 = min(p.started_at for p in parts)
            files = []
            for i, part in enumerate(parts):
                local = Path(tmp) / f"{i}.webm"
                await self.store.fetch(part.storage_key, local)
                offset = round((part.started_at - t0).total_seconds() * 1000)
                files.append(PartFile(part.participant, local, offset))
            out_path = Path(tmp) / "recording.webm"
            try:
                joined = await asyncio.to_thread(join_parts, files, out_path)
            except Exception as exc:
                log.exception("joining recording parts failed", recording_id=str(recording_id))
                return None, 0, 0, f"joining failed: {exc}"
            # A key of its own per attempt: a join that loses a race deletes only its file.
            key = f"recordings/{recording_id}/recording-{secrets.token_hex(4)}.webm"
            size = await self.store.put_file(key, out_path)
            return key, joined.duration_ms, size, None

    async def watch(self) -> None:
        """Stop recordings whose call ended without a stop (a hang-up, a closed page, a process
        that went away), and join stopped ones nobody is joining — in any process."""
        settings = self.app[SETTINGS]
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                await self.check_calls(settings.recording_retention_days)
            except Exception:
                log.exception("recording watch failed")

    async def check_calls(self, retention_days: int) -> None:
        async with self.app[DB].read() as session:
            ended = await parts.running_after_call_end(session)
        for recording_id in ended:
            async with self.app[DB].transaction() as session:
                await service.stop_for_call_end(
                    session, self.app[SIO], recording_id, retention_days=retention_days
                )
        # Stopped or already ended: either way this process's legs for them go.
        local = {w.recording_id for w in self.writers.values()}
        async with self.app[DB].read() as session:
            for recording_id in list(local):
                recording = await session.get(Recording, recording_id)
                if recording is None or recording.status != RecordingStatus.RECORDING:
                    ended.append(recording_id)
        for recording_id in set(ended):
            await self.stop(recording_id)
        async with self.app[DB].read() as session:
            waiting = await parts.unclaimed_processing(session, utcnow(), JOIN_CLAIM_STALE)
        for recording_id in waiting:
            await self._maybe_join(recording_id)

    async def apply(self, change: service.Change) -> None:
        """Do what a committed state change asks of the media side."""
        if change.discard_media:
            await self.discard(change.recording.id)
        elif change.finish_media:
            await self.stop(change.recording.id)


async def sweep_expired(app: web.Application) -> int:
    """Delete expired recordings (row, consents, file), each exactly once across processes."""
    deleted = 0
    now = utcnow()
    async with app[DB].read() as session:
        ids = await service.expired_ids(session, now)
    for recording_id in ids:
        async with app[DB].transaction() as session:
            key = await service.delete_expired(session, recording_id, now)
            if key:
                service.delete_files_after_commit(session, app[RECORDER].store, [key])
        if key is not None:
            deleted += 1
            log.info("expired recording deleted", recording_id=str(recording_id))
    return deleted


async def _retention_loop(app: web.Application, every: float) -> None:
    while True:
        try:
            await sweep_expired(app)
        except Exception:
            log.exception("recording retention sweep failed")
        await asyncio.sleep(every)


RECORDER = web.AppKey("recorder", Recorder)


async def recording_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the leg registry, the store, the recorder and its jobs."""
    settings = app[SETTINGS]
    legs = app[LEGS]
    store = storage.make_store(settings)
    app[storage.RECORDING_STORE] = store
    storage.set_default_store(store)
    spool = settings.data_dir / "recording-spool"
    recorder = Recorder(app, legs, store, spool)
    app[RECORDER] = recorder
    app[BACKGROUND].spawn(recorder.watch(), name="recording.watch")
    if settings.recording_retention_check_seconds > 0:
        app[BACKGROUND].spawn(
            _retention_loop(app, settings.recording_retention_check_seconds), name="recording.retention"
        )
    yield
    # Parts of recordings still running are stored now, while the database is still open.
    await legs.close_all()
    storage.set_default_store(None)
