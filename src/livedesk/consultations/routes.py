"""HTTP routes of the consultations capability: sharing files in the chat.

A file is uploaded first (``POST …/files``, multipart), then a chat message of kind image or
file refers to it with ``data.file_id``; the parties fetch it from ``GET /api/v1/files/{id}``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp_pydantic.oas.typing import (
    r200,
    r201,
    r400,
    r401,
    r403,
    r404,
    r409,
    r413,
    r415,
    r422,
    r429,
    r507,
)

from livedesk.consultations import files
from livedesk.consultations.files import FileOut
from livedesk.identity import Actor, key_of, request_actor
from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.errors import BadRequest, NotFound, UnsupportedMediaType, ValidationFailed
from livedesk.kit.http import ErrorResponse, endpoint, model_json
from livedesk.kit.logging import get_logger
from livedesk.uploads import CHUNK_BYTES, FILE_STORE

log = get_logger("livedesk.files")

FILE_PART = "file"
# What aiohttp's multipart reader raises on a body that is not well-formed multipart.
_MALFORMED = (ValueError, AssertionError, HttpProcessingError)


async def _party(request: web.Request) -> Actor:
    """A visitor token (``Authorization: Bearer …``) or a staff session cookie."""
    return await request_actor(request)


def _malformed() -> BadRequest:
    return BadRequest("Request body is not well-formed multipart/form-data", code="bad_multipart")


async def _file_part(request: web.Request) -> tuple[MultipartReader, BodyPartReader]:
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(
            f"Send the file as multipart/form-data with one part named '{FILE_PART}'",
            details={"expected": "multipart/form-data", "received": request.content_type},
        )
    try:
        reader = await request.multipart()
        part = await reader.next()
    except _MALFORMED:
        raise _malformed() from None
    if not isinstance(part, BodyPartReader) or part.name != FILE_PART:
        raise ValidationFailed(
            f"field '{FILE_PART}': send the file as the one part named '{FILE_PART}'",
            details=[{"in": "body", "field": FILE_PART, "message": "Field required", "type": "missing"}],
        )
    return reader, part


async def _chunks(reader: MultipartReader, part: BodyPartReader) -> AsyncIterator[bytes]:
    """The file part's bytes as they arrive; after them the body must end."""
    try:
        while chunk := await part.read_chunk(CHUNK_BYTES):
            yield chunk
        extra = await reader.next()
    except _MALFORMED:
        raise _malformed() from None
    if extra is not None:
        raise ValidationFailed(f"Send exactly one part, named '{FILE_PART}'", code="unexpected_part")


@endpoint
async def upload_file(
    request: web.Request, consultation_id: uuid.UUID, /
) -> (
    r201[FileOut]
    | r400[ErrorResponse]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r413[ErrorResponse]
    | r415[ErrorResponse]
    | r422[ErrorResponse]
    | r429[ErrorResponse]
    | r507[ErrorResponse]
):
    """Share a file in a consultation's chat: multipart/form-data with one part named
    ``file``. PNG, JPEG, GIF and WebP images and PDF documents are accepted, judged by their
    content; LIVEDESK_UPLOAD_MAX_BYTES is the limit, images at most
    LIVEDESK_UPLOAD_MAX_IMAGE_PIXELS (422 image_too_large). Only once an advisor has taken the
    consultation (409 not_accepted), within the consultation's and the shopper's byte quotas
    (413 upload_quota_exceeded), and not while the server's disk is nearly full (507). Then
    send a chat message of kind image or file with ``data.file_id`` (an unsent file is
    deleted after LIVEDESK_UNSENT_FILE_MINUTES). For the consultation's shopper (visitor
    token) and its advisor (session cookie and X-CSRF-Token).

    Tags: files
    """
    party = await _party(request)
    db = request.app[DB]
    settings = request.app[SETTINGS]
    store, limits = request.app[FILE_STORE], files.UploadLimits.of(settings)
    await request.app[RATE_LIMITS].hit(
        settings.chat_rate_limit, "files.upload", key_of(party), message="Uploading too fast; slow down"
    )
    allowance = await files.check_upload(db, store, consultation_id, party, limits, request.content_length)
    reader, part = await _file_part(request)
    row = await files.save(db, store, consultation_id, party, _chunks(reader, part), part.filename, allowance)
    return model_json(FileOut.of(row), status=201)


@endpoint
async def download_file(
    request: web.Request, file_id: uuid.UUID, /
) -> r200 | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """A file shared in a chat, for the consultation's shopper and advisor (and supervisors
    and admins, audited). Images are shown inline, anything else is offered as a download;
    the file is never run by the browser.

    Tags: files
    """
    party = await _party(request)
    f = await files.for_download(request.app[DB], file_id, party)
    try:
        async with request.app[FILE_STORE].open(f.storage_key) as chunks:
            response = web.StreamResponse(headers=files.download_headers(f))
            response.content_length = f.size
            await response.prepare(request)
            if request.method != "HEAD":
                async for chunk in chunks:
                    await response.write(chunk)
            await response.write_eof()
    except FileNotFoundError:
        log.error("chat file missing from storage", file_id=str(f.id), storage_key=f.storage_key)
        raise NotFound("The file's content is no longer available", code="file_not_found") from None
    return response


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/consultations/{consultation_id}/files", upload_file)
    app.router.add_get("/api/v1/files/{file_id}", download_file)
