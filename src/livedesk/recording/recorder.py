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
from typing import Any

from aiohttp import web

from livedesk.calls.legs import LEGS, Leg, LegRegistry, rtc_configuration
from livedesk.calls.placement import PLACEMENT
from livedesk.calls.webm import WebmWriter
from livedesk.kit.background import BACKGROUND
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import Conflict, ValidationFailed
from livedesk.kit.logging import get_logger
from livedesk.kit.periodic import Periodic
from livedesk.models import Recording, RecordingPart, RecordingStatus
from livedesk.recording import gaps, parts, service, storage
from livedesk.recording.join import PartFile, join_parts, salvage_part

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
        legs.attachers.append(self.attach)
        legs.closers.append(self._leg_closed)

    @property
    def process_id(self) -> str:
        return self.app[PLACEMENT].id

    async def open_leg(self, recording: Recording, participant: str, offer_sdp: str, *, user: str) -> str:
        """Answer a participant's send-only offer (where the call's legs live): the call's leg
        for this participant, which the recorder (and monitoring, if a supervisor listens) take."""
        settings = self.app[SETTINGS]
        answer = await self.legs.offer(
            recording.consultation_id,
            participant,
            rtc_configuration(settings, user),
            offer_sdp,
            unneeded=Conflict("The recording has stopped; no media is taken", code="not_recording"),
        )
        return answer.sdp

    async def attach(self, leg: Leg) -> None:
        """A leg of the call was answered (for recording or monitoring): record it if the
        call's recording is running."""
        if any(w.leg is leg for w in self.writers.values()):
            leg.holds.add("recording")
            return
        async with self.app[DB].read() as session:
            recording = await service.open_for_consultation(session, leg.call_id)
        if recording is None or recording.status != RecordingStatus.RECORDING:
            return
        await self._attach_writer(leg, recording.id, recording.with_video)

    async def attach_running(self, recording_id: uuid.UUID) -> None:
        """The recording started (consent, announce): record the call's legs already open
        (a supervisor's) — the browsers keep that one connection, they open no second one."""
        async with self.app[DB].read() as session:
            recording = await session.get(Recording, recording_id)
        if recording is None or recording.status != RecordingStatus.RECORDING:
            return
        for leg in self.legs.legs_of(recording.consultation_id):
            if not leg.closed.is_set() and not any(w.leg is leg for w in self.writers.values()):
                await self._attach_writer(leg, recording.id, recording.with_video)

    async def _attach_writer(self, leg: Leg, recording_id: uuid.UUID, with_video: bool) -> None:
        # The writing process is part of the key (and of the spool path): whoever joins can
        # tell a part whose process died, and salvage it from the shared spool.
        name = f"{leg.participant}-{leg.id}.webm"
        path = self.spool / str(recording_id) / self.process_id / name
        writer = WebmWriter(path, expect_video=with_video)
        entry = LegWriter(leg=leg, recording_id=recording_id, part_id=None, writer=writer)
        self.writers[leg.id] = entry
        leg.add_sink(writer.write)
        leg.holds.add("recording")
        async with self.app[DB].transaction() as session:
            entry.part_id = await parts.open_part(
                session, recording_id, leg.participant, parts.part_key(recording_id, self.process_id, name)
            )
        if entry.part_id is None:
            # The recording stopped meanwhile: this leg is not the recorder's after all.
            leg.holds.discard("recording")
            await self._finish(entry)
            return
        self.app[BACKGROUND].spawn(self._first_keyframe(entry), name="recording.keyframe")

    async def _first_keyframe(self, entry: LegWriter) -> None:
        # A PLI at start so the file opens on a key frame without waiting for the sender's next.
        leg, writer = entry.leg, entry.writer
        while not writer.opened and not leg.closed.is_set() and leg.id in self.writers:
            # Once a key frame is in, the file only waits for the sender reports: no PLIs.
            if writer.expect_video and not writer.has_keyframe:
                await leg.request_keyframe()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(leg.closed.wait(), KEYFRAME_RETRY_SECONDS)
        if writer.started_wall is not None and entry.part_id is not None:
            # Noted at once, not only when the part is stored: a part salvaged after its
            # process died is placed by it.
            async with self.app[DB].transaction() as session:
                await parts.note_start(
                    session, entry.part_id, datetime.fromtimestamp(writer.started_wall, UTC)
                )

    async def _leg_closed(self, leg: Leg) -> None:
        entry = self.writers.get(leg.id)
        if entry is not None:
            await self._finish(entry)

    async def _finish(self, entry: LegWriter) -> None:
        """The leg ended, or the recording stopped while the leg goes on for monitoring: close
        the writer and store its part."""
        if self.writers.get(entry.leg.id) is not entry:
            return
        del self.writers[entry.leg.id]
        entry.leg.remove_sink(entry.writer.write)
        recording_id = entry.recording_id
        # Legs close concurrently (the stop here, the browser hanging up there): a join started
        # here waits until every part being stored here is in.
        self._storing[recording_id] += 1
        try:
            written = await asyncio.to_thread(entry.writer.close)
            if entry.part_id is not None:
                if written and recording_id not in self._discarded:
                    await self._store_part(entry.part_id, entry.leg.participant, entry.writer)
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

    async def _end_writers(self, recording_id: uuid.UUID) -> None:
        entries = [w for w in self.writers.values() if w.recording_id == recording_id]
        for entry in entries:
            await self._finish(entry)
        calls = {entry.leg.call_id for entry in entries}
        async with self.app[DB].read() as session:
            recording = await session.get(Recording, recording_id)
        if recording is not None:
            calls.add(recording.consultation_id)
        for call_id in calls:
            # The legs go unless a supervisor still listens through them.
            await self.legs.release(call_id, "recording")

    async def stop(self, recording_id: uuid.UUID) -> None:
        """The recording stopped: its parts here are stored (the legs close unless monitoring
        still uses them), then joined."""
        await self._end_writers(recording_id)
        await self._maybe_join(recording_id)

    async def discard(self, recording_id: uuid.UUID) -> None:
        """A refusal: end the legs and keep nothing (the consent rule: every process's part
        of it goes, a dead process's spool too)."""
        self._discarded.add(recording_id)
        await self._end_writers(recording_id)
        async with self.app[DB].read() as session:
            keys = [p.storage_key for p in await parts.parts_of(session, recording_id)]
        for key in keys:
            await self.store.delete(key)
        shutil.rmtree(self.spool / str(recording_id), ignore_errors=True)

    async def _maybe_join(self, recording_id: uuid.UUID) -> None:
        local_busy = (
            any(w.recording_id == recording_id for w in self.writers.values())
            or recording_id in self._storing
        )
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
        by whichever process claims it. Parts another live process is still storing are waited
        for (up to ``PART_WAIT_SECONDS``); a part whose process died is salvaged from the
        shared spool at once. Whatever is still missing is a gap, recorded with the recording
        (``incomplete``), never silently left out."""
        settings = self.app[SETTINGS]
        placement = self.app[PLACEMENT]
        try:
            async with self.app[DB].transaction() as session:
                claimed = await parts.claim_join(session, recording_id, utcnow(), JOIN_CLAIM_STALE)
            if not claimed:
                return
            deadline = asyncio.get_running_loop().time() + PART_WAIT_SECONDS
            while True:
                async with self.app[DB].read() as session:
                    found = await parts.parts_of(session, recording_id)
                waiting = False
                for part in found:
                    if part.stored:
                        continue
                    writer = parts.writer_of(part.storage_key)
                    if writer is not None and placement.routed and not await placement.alive(writer):
                        await self._salvage(part, writer)
                    else:
                        waiting = True
                if not waiting or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(PART_POLL_SECONDS)
            async with self.app[DB].read() as session:
                found = await parts.parts_of(session, recording_id)
                recording = await session.get(Recording, recording_id)
            stored = [p for p in found if p.stored]
            expected = ("shopper", "advisor")
            found_gaps = gaps.find_gaps(
                [gaps.Span(p.participant, p.started_at, p.duration_ms) for p in stored], expected
            )
            key, duration, size, error = await self._join_files(recording_id, stored)
            async with self.app[DB].transaction() as session:
                done = await service.finish(
                    session,
                    recording_id,
                    storage_key=key,
                    duration_ms=duration,
                    size_bytes=size,
                    error=error,
                    retention_days=settings.recording_retention_days,
                    gaps=found_gaps,
                )
            if done is None and key is not None:
                # Refused or erased while we joined: keep nothing.
                await self.store.delete(key)
            if recording is not None and done is not None:
                log.info("recording joined", recording_id=str(recording_id), gaps=len(found_gaps))
            for part in found:
                await self.store.delete(part.storage_key)
        finally:
            self._joining.discard(recording_id)
            # Only this process's own spool, and directories left empty: another process's
            # part there is its own to store (or to be salvaged), never ours to delete.
            shutil.rmtree(self.spool / str(recording_id) / self.process_id, ignore_errors=True)
            with contextlib.suppress(OSError):
                (self.spool / str(recording_id)).rmdir()

    async def _salvage(self, part: RecordingPart, writer: str) -> None:
        """A part whose process died before storing it: what it had written to the shared spool
        is remuxed (its unfinished end cut off) and stored; nothing there, and it stays out."""
        source = self.spool / str(part.recording_id) / writer / part.storage_key.rsplit("/", 1)[-1]
        target = source.with_suffix(".salvaged.webm")
        salvaged = None
        if source.exists():
            try:
                salvaged = await asyncio.to_thread(salvage_part, source, target)
            except Exception:
                log.exception("salvaging a dead process's part failed", part_id=str(part.id))
        async with self.app[DB].transaction() as session:
            if salvaged is None or not salvaged.packets:
                await parts.drop_part(session, part.id)
                kept = False
            else:
                size = await self.store.put_file(part.storage_key, target)
                kept = await parts.store_part(
                    session,
                    part.id,
                    started_at=part.started_at,
                    duration_ms=salvaged.duration_ms,
                    size_bytes=size,
                    video_frames=salvaged.video_frames,
                    audio_frames=salvaged.audio_frames,
                )
        # Salvaged (or empty): the dead process's file has served its purpose.
        for path in (source, target):
            await asyncio.to_thread(path.unlink, True)
        with contextlib.suppress(OSError):
            source.parent.rmdir()
        log.warning(
            "part of a dead process salvaged" if kept else "part of a dead process lost",
            recording_id=str(part.recording_id),
            participant=part.participant,
            process=writer,
            duration_ms=salvaged.duration_ms if salvaged else 0,
        )

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

    async def watch_once(self) -> None:
        """Stop recordings whose call ended without a stop (a hang-up, a closed page, a process
        that went away), and join stopped ones nobody is joining — in any process (every
        ``WATCH_SECONDS``)."""
        await self.check_calls(self.app[SETTINGS].recording_retention_days)

    async def check_calls(self, retention_days: int) -> None:
        async with self.app[DB].read() as session:
            ended = await parts.running_after_call_end(session)
        for recording_id in ended:
            async with self.app[DB].transaction() as session:
                await service.stop_for_call_end(session, recording_id, retention_days=retention_days)
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
        """Do what a committed state change asks of the media side (here)."""
        if change.discard_media:
            await self.discard(change.recording.id)
        elif change.finish_media:
            await self.stop(change.recording.id)


# Operations run where the call's legs live (calls/placement.py).
LEG_OP = "recording.leg"
APPLY_OP = "recording.apply"
ATTACH_OP = "recording.attach"


async def apply_change(app: web.Application, change: service.Change) -> None:
    """A stop or a refusal reaches the legs' process at once (its watcher would only notice
    within seconds); without legs anywhere, the join starts here."""
    if not (change.discard_media or change.finish_media):
        return
    args = {"recording_id": str(change.recording.id), "discard": change.discard_media}
    done = await app[PLACEMENT].run(change.recording.consultation_id, APPLY_OP, args, claim=False)
    if done is None:
        await app[RECORDER].apply(change)


async def attach_running(app: web.Application, consultation_id: uuid.UUID, recording_id: uuid.UUID) -> None:
    """The recording now runs: record the legs a supervisor's monitoring already opened."""
    await app[PLACEMENT].run(consultation_id, ATTACH_OP, {"recording_id": str(recording_id)}, claim=False)


def _handlers(app: web.Application) -> None:
    recorder = app[RECORDER]

    async def open_leg(args: dict[str, Any]) -> dict[str, Any]:
        async with app[DB].read() as session:
            recording = await session.get(Recording, uuid.UUID(args["recording_id"]))
        if recording is None:
            raise Conflict("No such recording", code="not_recording")
        try:
            sdp = await recorder.open_leg(
                recording, args["participant"], args["sdp"], user=args["participant"]
            )
        except ValueError as exc:
            # aiortc raises ValueError for SDP it cannot use.
            raise ValidationFailed(f"The offer could not be used: {exc}", code="bad_offer") from None
        return {"sdp": sdp, "placement": app[PLACEMENT].id}

    async def apply(args: dict[str, Any]) -> bool:
        recording_id = uuid.UUID(args["recording_id"])
        if args.get("discard"):
            await recorder.discard(recording_id)
        else:
            await recorder.stop(recording_id)
        return True

    async def attach(args: dict[str, Any]) -> bool:
        await recorder.attach_running(uuid.UUID(args["recording_id"]))
        return True

    placement = app[PLACEMENT]
    placement.handle(LEG_OP, open_leg)
    placement.handle(APPLY_OP, apply)
    placement.handle(ATTACH_OP, attach)


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
    _handlers(app)
    Periodic("recording.watch", recorder.watch_once, every=WATCH_SECONDS).spawn(app[BACKGROUND])
    if settings.recording_retention_check_seconds > 0:

        async def retention() -> None:
            await sweep_expired(app)

        # Each expired recording is claimed by its delete, so every process may sweep.
        Periodic(
            "recording.retention",
            retention,
            every=settings.recording_retention_check_seconds,
            first_at_once=True,
        ).spawn(app[BACKGROUND])
    yield
    # Parts of recordings still running are stored now, while the database is still open.
    await legs.close_all()
    storage.set_default_store(None)
