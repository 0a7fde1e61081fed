"""Profile photos for the nomination profile: an admin uploads one, shoppers and staff see it.

``POST /api/v1/staff/{id}/photo`` takes one multipart part named ``file``: a PNG, JPEG or WebP
image judged by its bytes (never by the client's Content-Type or file name), at most
``PHOTO_MAX_BYTES``. It is kept under ``<data dir>/photos`` with a name of our own making, and
the account's ``photo_url`` becomes ``/api/v1/staff/{id}/photo?v=<photo id>`` (the version
makes a new photo a new address, so no cache shows the old one). Each upload is a new file;
the one it replaces is removed once the change is committed.

``GET /api/v1/staff/{id}/photo`` serves the photo the account's ``photo_url`` names: to anyone
for an active, nominable account (shoppers see it when picking an advisor), to signed-in staff
for every account. It is sent with its sniffed type, ``nosniff`` and a sandboxing CSP, so a
browser only ever shows it as an image.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import filetype
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp_pydantic.oas.typing import r200, r304, r400, r401, r403, r404, r413, r415, r422
from sqlalchemy import select

from livedesk import audit
from livedesk.identity import current_staff, guarded, require_staff
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)
from livedesk.kit.http import ErrorResponse, endpoint, model_json
from livedesk.kit.logging import get_logger
from livedesk.models import Role, Staff
from livedesk.staff.schemas import StaffOut
from livedesk.uploads import (
    CHUNK_BYTES,
    MULTIPART_OVERHEAD,
    FileStore,
    LocalFileStore,
    storage_key,
)

log = get_logger("livedesk.staff.photos")

PHOTO_MAX_BYTES = 2 * 1024 * 1024
PHOTO_TYPES: dict[str, str] = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
PHOTO_TYPES_TEXT = "PNG, JPEG or WebP"
FILE_PART = "file"
STAFF_PHOTO_CHANGED = "staff.photo_changed"

PHOTO_STORE: web.AppKey[FileStore] = web.AppKey("photo_store")

# Where the id of the account's uploaded photo is kept (``Staff.extra``).
PHOTO_ID_KEY = "photo_id"

# What aiohttp's multipart reader raises on a body that is not well-formed multipart.
_MALFORMED = (ValueError, AssertionError, HttpProcessingError)


def photo_url(staff_id: uuid.UUID, photo_id: uuid.UUID) -> str:
    return f"/api/v1/staff/{staff_id}/photo?v={photo_id}"


def stored_photo(staff: Staff) -> uuid.UUID | None:
    """The id of the last photo uploaded for this account (kept in ``extra``), if any."""
    value = (staff.extra or {}).get(PHOTO_ID_KEY)
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def uploaded_photo(staff: Staff) -> uuid.UUID | None:
    """The uploaded photo the account's ``photo_url`` names, if it names one. Only an id this
    module recorded counts: a ``photo_url`` typed in by hand cannot point at another file."""
    photo_id = stored_photo(staff)
    if photo_id is None or staff.photo_url != photo_url(staff.id, photo_id):
        return None
    return photo_id


def sniff_photo(head: bytes) -> str:
    """The image type the content shows, if it is one a profile photo may be; 415 otherwise."""
    kind = filetype.guess(head)
    detected = str(kind.mime) if kind is not None else "an unrecognised type"
    if detected not in PHOTO_TYPES:
        raise UnsupportedMediaType(
            f"A profile photo must be a {PHOTO_TYPES_TEXT} image; this file's content is {detected}",
            details={"field": FILE_PART, "detected": detected, "allowed": sorted(PHOTO_TYPES)},
        )
    return detected


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The photo is larger than the limit of {PHOTO_MAX_BYTES // (1024 * 1024)} MB",
        details={"field": FILE_PART, "limit": PHOTO_MAX_BYTES},
    )


def _malformed() -> BadRequest:
    return BadRequest("Request body is not well-formed multipart/form-data", code="bad_multipart")


async def _read_photo(request: web.Request) -> bytes:
    """The bytes of the one part named ``file``, counted as they arrive (a hard cap, whatever
    the request declares)."""
    if request.content_length is not None and request.content_length > PHOTO_MAX_BYTES + MULTIPART_OVERHEAD:
        raise _too_large()
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(
            f"Send the photo as multipart/form-data with one part named '{FILE_PART}'",
            details={"expected": "multipart/form-data", "received": request.content_type},
        )
    try:
        reader = await request.multipart()
        part = await reader.next()
        if not isinstance(part, BodyPartReader) or part.name != FILE_PART:
            raise ValidationFailed(
                f"field '{FILE_PART}': send the photo as the one part named '{FILE_PART}'",
                details=[{"in": "body", "field": FILE_PART, "message": "Field required", "type": "missing"}],
            )
        content = bytearray()
        while chunk := await part.read_chunk(CHUNK_BYTES):
            content += chunk
            if len(content) > PHOTO_MAX_BYTES:
                raise _too_large()
        extra = await reader.next()
    except _MALFORMED:
        raise _malformed() from None
    if extra is not None:
        raise ValidationFailed(f"Send exactly one part, named '{FILE_PART}'", code="unexpected_part")
    if not content:
        raise ValidationFailed(
            f"field '{FILE_PART}': the file is empty",
            code="empty_file",
            details=[{"in": "body", "field": FILE_PART, "message": "the file is empty", "type": "empty"}],
        )
    return bytes(content)


async def _one(content: bytes) -> AsyncIterator[bytes]:
    yield content


@guarded(Role.ADMIN)
async def upload_photo(
    request: web.Request, staff_id: uuid.UUID, /
) -> (
    r200[StaffOut]
    | r400[ErrorResponse]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r413[ErrorResponse]
    | r415[ErrorResponse]
    | r422[ErrorResponse]
):
    """Set a staff member's profile photo (admin only): multipart/form-data with one part
    named ``file``, a PNG, JPEG or WebP image (judged by its content) of at most 2 MB. The
    account's ``photo_url`` then points at ``GET /api/v1/staff/{staff_id}/photo``.

    Tags: staff
    """
    actor = await require_staff(request, Role.ADMIN)
    db = request.app[DB]
    store = request.app[PHOTO_STORE]
    async with db.read() as session:
        if await session.get(Staff, staff_id) is None:
            raise NotFound(f"No staff account with id {staff_id}")
    content = await _read_photo(request)
    content_type = sniff_photo(content[:8192])

    photo_id = uuid.uuid4()
    await store.put(storage_key(photo_id), _one(content))
    try:
        async with db.transaction() as session:
            staff = await session.scalar(select(Staff).where(Staff.id == staff_id).with_for_update())
            if staff is None:
                raise NotFound(f"No staff account with id {staff_id}")
            replaced = stored_photo(staff)
            staff.photo_url = photo_url(staff.id, photo_id)
            # A new dict, so the JSON column is seen as changed.
            staff.extra = {**(staff.extra or {}), PHOTO_ID_KEY: str(photo_id)}
            audit.record(
                session,
                actor=actor.staff_id,
                action=STAFF_PHOTO_CHANGED,
                target_type="staff",
                target_id=staff.id,
                details={"changed": ["photo_url"], "content_type": content_type, "size": len(content)},
            )
            await session.flush()
            out = StaffOut.model_validate(staff)
    except BaseException:
        await store.delete(storage_key(photo_id))
        raise
    if replaced is not None:
        await store.delete(storage_key(replaced))
    log.info("staff photo stored", staff_id=str(staff_id), content_type=content_type, size=len(content))
    return model_json(out)


async def _viewer_is_staff(request: web.Request) -> bool:
    try:
        return await current_staff(request) is not None
    except Unauthenticated:
        # An ended session is no reason to hide a photo anyone may see.
        return False


@endpoint
async def get_photo(request: web.Request, staff_id: uuid.UUID, /) -> r200 | r304 | r404[ErrorResponse]:
    """A staff member's profile photo: public for active advisors shoppers may nominate, for
    signed-in staff for everyone. Served as an image only (nosniff, sandboxing CSP).

    Tags: staff
    """
    async with request.app[DB].read() as session:
        staff = await session.get(Staff, staff_id)
    photo_id = uploaded_photo(staff) if staff is not None else None
    if staff is None or photo_id is None:
        raise NotFound("This staff member has no uploaded photo", code="photo_not_found")
    if not (staff.active and staff.nominable) and not await _viewer_is_staff(request):
        raise NotFound("This staff member has no uploaded photo", code="photo_not_found")

    etag = f'"{photo_id}"'
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "no-cache",
        "ETag": etag,
    }
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    try:
        async with request.app[PHOTO_STORE].open(storage_key(photo_id)) as chunks:
            content = b"".join([chunk async for chunk in chunks])
    except FileNotFoundError:
        log.error("staff photo missing from storage", staff_id=str(staff_id), photo_id=str(photo_id))
        raise NotFound("The photo is no longer available", code="photo_not_found") from None
    content_type = sniff_photo(content[:8192])
    headers["Content-Type"] = content_type
    headers["Content-Disposition"] = f'inline; filename="photo.{PHOTO_TYPES[content_type]}"'
    return web.Response(body=content, headers=headers)


def setup_routes(app: web.Application) -> None:
    if PHOTO_STORE not in app:
        # The composition root may have put another store (S3, …) there already.
        app[PHOTO_STORE] = LocalFileStore(app[SETTINGS].data_dir / "photos")
    app.router.add_post("/api/v1/staff/{staff_id}/photo", upload_photo)
    app.router.add_get("/api/v1/staff/{staff_id}/photo", get_photo)
