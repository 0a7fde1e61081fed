"""HTTP routes of recording: a shopper's recordings, one recording, and its media streamed
with HTTP Range — to the advisor of the recording's consultation, supervisors and admins only
(``access.py``), every read audited. Each handler writes its audit entry in a transaction and
answers a refusal only after that transaction committed."""

from __future__ import annotations

import uuid

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r206, r401, r403, r404, r409, r416

from livedesk.identity import guarded, require_staff
from livedesk.kit.context import DB
from livedesk.kit.errors import NotFound
from livedesk.kit.http import ErrorResponse, RangeNotSatisfiable, model_json
from livedesk.kit.http import parse_byte_range as parse_range  # one Range reading for every download
from livedesk.kit.logging import get_logger
from livedesk.recording import access
from livedesk.recording.schemas import RecordingListOut, RecordingOut
from livedesk.recording.storage import RECORDING_STORE

log = get_logger("livedesk.recording")


@guarded()
async def list_recordings(
    request: web.Request, shopper_id: uuid.UUID, /
) -> r200[RecordingListOut] | r401[ErrorResponse] | r403[ErrorResponse]:
    """A shopper's recordings, newest first, with their consents: all of them for supervisors
    and admins; for an advisor who has served the shopper, those of the consultations they took
    part in. Audited.

    Tags: recordings
    """
    staff = await require_staff(request)
    async with request.app[DB].transaction() as session:
        outcome = await access.list_for_shopper(session, shopper_id, staff)
    return model_json(RecordingListOut(recordings=outcome.unwrap()))


@guarded()
async def get_recording(
    request: web.Request, recording_id: uuid.UUID, /
) -> r200[RecordingOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """One recording: state, consents, duration and size (its consultation's advisor,
    supervisors and admins). Audited.

    Tags: recordings
    """
    staff = await require_staff(request)
    async with request.app[DB].transaction() as session:
        outcome = await access.get_for_staff(session, recording_id, staff)
    return model_json(outcome.unwrap())


@guarded()
async def recording_media(
    request: web.Request, recording_id: uuid.UUID, /
) -> (
    r200
    | r206
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r416[ErrorResponse]
):
    """The recording's WebM file, streamed; send Range for a part (206). Every request is
    written to the audit log, refused ones too.

    Tags: recordings
    """
    staff = await require_staff(request)
    byte_range = request.headers.get("Range")
    async with request.app[DB].transaction() as session:
        outcome = await access.open_for_playback(session, recording_id, staff, byte_range)
    recording = outcome.unwrap()
    assert recording.storage_key is not None
    store = request.app[RECORDING_STORE]
    try:
        size = await store.size(recording.storage_key)
    except FileNotFoundError:
        log.error("recording file missing", recording_id=str(recording.id), storage_key=recording.storage_key)
        raise NotFound("The recording's file is no longer available", code="recording_not_found") from None
    try:
        span = parse_range(byte_range, size)
    except RangeNotSatisfiable:
        response = web.json_response(
            {
                "error": {
                    "code": "range_not_satisfiable",
                    "message": f"Send one byte range within {size} bytes",
                }
            },
            status=416,
            headers={"Content-Range": f"bytes */{size}"},
        )
        return response
    start, end = span if span is not None else (0, size - 1)
    stream = web.StreamResponse(status=206 if span is not None else 200)
    stream.headers.update(
        {
            "Content-Type": "video/webm",
            "Accept-Ranges": "bytes",
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'inline; filename="recording-{recording.id}.webm"',
        }
    )
    if span is not None:
        stream.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    stream.content_length = end - start + 1 if size else 0
    await stream.prepare(request)
    if size and request.method != "HEAD":
        async for chunk in store.read(recording.storage_key, start, end):
            await stream.write(chunk)
    await stream.write_eof()
    return stream


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/shoppers/{shopper_id}/recordings", list_recordings)
    app.router.add_get("/api/v1/recordings/{recording_id}", get_recording)
    app.router.add_get("/api/v1/recordings/{recording_id}/media", recording_media)
