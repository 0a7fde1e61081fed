"""Files shared in a consultation's chat: checked by what they contain, kept outside the web
root, and served so that a browser never runs them.

An upload is streamed: its size is counted as it arrives (a hard cap, whatever the request
claims), its type is read from its first bytes (never from the client's Content-Type or file
name), and its bytes go to a ``FileStore`` under a name of our own making. Only then is the
``ChatFile`` row written; a chat message of kind image/file refers to it by id.

Uploads have budgets (``UploadLimits``): only once an advisor has taken the consultation,
within a byte quota per consultation and per shopper a day, not while the files' disk is past
its high-water mark, and images no larger (in pixels, from their header) than a cap.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import unicodedata
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, unquote

import filetype
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk import audit
from livedesk.consultations.chat import CHAT_OPEN
from livedesk.consultations.image_size import ImageSize, Unreadable
from livedesk.identity import Actor, Parties, ShopperActor, is_party, staff_of
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.kit.errors import (
    AppError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from livedesk.kit.logging import get_logger
from livedesk.models import ChatFile, Consultation, ConsultationStatus, Role
from livedesk.settings import Settings
from livedesk.uploads import MULTIPART_OVERHEAD, FileStore, LocalFileStore, storage_key

log = get_logger("livedesk.files")

# What may be shared, by detected MIME type, with the file-name endings that fit each.
ALLOWED: dict[str, tuple[str, ...]] = {
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "application/pdf": (".pdf",),
}
ALLOWED_TEXT = "PNG, JPEG, GIF and WebP images and PDF documents"
# filetype looks at no more than this many leading bytes.
SNIFF_BYTES = 8192
MAX_FILENAME = 255
READER_ROLES = (Role.SUPERVISOR, Role.ADMIN)
# Files are shared once an advisor has taken the consultation (and through wrap-up): a shopper
# still waiting, who may never be answered, stores nothing.
ACCEPTED = (ConsultationStatus.ACTIVE, ConsultationStatus.WRAP_UP)
QUOTA_WINDOW = timedelta(hours=24)


class InsufficientStorage(AppError):
    status = 507
    code = "storage_full"


@dataclass(frozen=True)
class UploadLimits:
    """The upload budgets, from the settings (LIVEDESK_UPLOAD_*)."""

    file_bytes: int
    consultation_bytes: int
    shopper_bytes_per_day: int
    disk_high_water_percent: int
    image_pixels: int

    @classmethod
    def of(cls, settings: Settings) -> UploadLimits:
        return cls(
            file_bytes=settings.upload_max_bytes,
            consultation_bytes=settings.upload_consultation_bytes,
            shopper_bytes_per_day=settings.upload_shopper_bytes_per_day,
            disk_high_water_percent=settings.upload_disk_high_water_percent,
            image_pixels=settings.upload_max_image_pixels,
        )


@dataclass(frozen=True)
class Allowance:
    """What one upload may be: the limits, and the bytes its quotas had left when it began."""

    limits: UploadLimits
    quota_left: int

    @property
    def max_bytes(self) -> int:
        return min(self.limits.file_bytes, self.quota_left)

    def too_large(self) -> PayloadTooLarge:
        if self.quota_left < self.limits.file_bytes:
            return quota_spent(self.quota_left)
        limit = self.limits.file_bytes
        return PayloadTooLarge(
            f"The file is larger than the limit of {limit} bytes", details={"limit": limit}
        )


def quota_spent(left: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload quota is spent: {max(0, left)} more bytes may be shared here today",
        code="upload_quota_exceeded",
        details={"quota_left": max(0, left)},
    )


def file_url(file_id: uuid.UUID) -> str:
    return f"/api/v1/files/{file_id}"


class FileOut(BaseModel):
    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    sha256: str
    url: str

    @classmethod
    def of(cls, f: ChatFile) -> FileOut:
        return cls(
            id=f.id,
            filename=f.filename,
            content_type=f.content_type,
            size=f.size,
            sha256=f.sha256,
            url=file_url(f.id),
        )


# --- checks ---------------------------------------------------------------------------------


def sniff(head: bytes) -> str:
    """The MIME type the content shows, if it is one we accept; 415 otherwise."""
    kind = filetype.guess(head)
    detected = str(kind.mime) if kind is not None else _describe_unrecognised(head)
    if detected not in ALLOWED:
        raise UnsupportedMediaType(
            f"Only {ALLOWED_TEXT} can be shared; this file's content is {detected}",
            details={"detected": detected, "allowed": sorted(ALLOWED)},
        )
    return detected


def _describe_unrecognised(head: bytes) -> str:
    """A name for content filetype does not know (markup and text mostly), for the message."""
    try:
        text = head.decode("utf-8").lstrip("\ufeff \t\r\n").lower()
    except UnicodeDecodeError:
        return "application/octet-stream"
    if "<svg" in text:
        return "image/svg+xml"
    if text.startswith(("<!doctype html", "<html")) or "<script" in text:
        return "text/html"
    if text.startswith("<?xml"):
        return "application/xml"
    return "text/plain"


_UNSAFE_CHARS = frozenset('<>:"|?*')


def sanitize_filename(raw: str | None, content_type: str) -> str:
    """A safe base name to show and to offer on download: no directories, no control or
    direction-changing characters, no leading dots, at most 255 characters, and an ending
    that matches the content (``report.html`` holding a PDF becomes ``report.html.pdf``).

    Browsers escape ``"``, CR and LF in a part's file name as %22, %0D and %0A, and some
    clients (aiohttp's, for one) percent-encode all of it; both are decoded first."""
    name = unicodedata.normalize("NFC", unquote(raw or "", errors="replace"))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        "_" if ch in _UNSAFE_CHARS else ch for ch in name if not unicodedata.category(ch).startswith("C")
    )
    name = " ".join(name.split()).strip(". ")
    endings = ALLOWED[content_type]
    ending = next((e for e in endings if name.lower().endswith(e)), None)
    if ending is None:
        ending = endings[0]
        name = (name or "file") + ending
    stem = name[: len(name) - len(ending)]
    if not stem.strip(". "):
        stem = "file"
    return stem[: MAX_FILENAME - len(ending)] + name[len(name) - len(ending) :]


def check_declared_length(content_length: int | None, allowance: Allowance) -> None:
    """Refuse at once a body that says it is too long to hold an acceptable file."""
    if content_length is not None and content_length > allowance.max_bytes + MULTIPART_OVERHEAD:
        raise allowance.too_large()


def check_pixels(size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width * height > limit:
        raise ValidationFailed(
            f"field 'file': the image is {width}×{height} pixels; at most {limit} pixels are accepted",
            code="image_too_large",
            details={"width": width, "height": height, "max_pixels": limit},
        )


async def check_disk(store: FileStore, limits: UploadLimits) -> None:
    """Refuse uploads while the disk holding the files is past its high-water mark (the
    database, recordings and logs often share it). Only a local store has a disk to watch."""
    if limits.disk_high_water_percent >= 100 or not isinstance(store, LocalFileStore):
        return
    used, total = await asyncio.to_thread(_disk_usage, store.root)
    if used * 100 > total * limits.disk_high_water_percent:
        log.warning("uploads refused: disk past its high-water mark", used=used, total=total)
        raise InsufficientStorage("The server cannot store files right now; try again later")


def _disk_usage(root: Path) -> tuple[int, int]:
    # The files' directory may not exist before the first upload: ask its nearest parent.
    path = root
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    return usage.used, usage.total


# --- rules ----------------------------------------------------------------------------------


def _is_party(c: Consultation, actor: Actor) -> bool:
    # The shopper or the assigned advisor: not one merely offered it, nor an overseer.
    return is_party(actor, Parties.of(c, offered=False), write=True)


async def _consultation_for_upload(
    session: AsyncSession, consultation_id: uuid.UUID, party: Actor, *, lock: bool
) -> Consultation:
    c = await session.get(Consultation, consultation_id, with_for_update=lock)
    if c is None:
        raise NotFound("No such consultation", code="consultation_not_found")
    if not _is_party(c, party):
        raise Forbidden("You are not a party to this consultation", code="not_a_party")
    if c.status not in CHAT_OPEN:
        raise Conflict(
            f"The consultation is {c.status.value}; files can no longer be shared", code="chat_closed"
        )
    if c.status not in ACCEPTED:
        raise Conflict("Files can be shared once an advisor has taken the consultation", code="not_accepted")
    return c


async def _quota_left(session: AsyncSession, c: Consultation, party: Actor, limits: UploadLimits) -> int:
    """Bytes the consultation's quota (both parties' files) and, for a shopper, their own
    quota over the last 24 hours still allow. Unsent files count until the sweep removes them."""
    used = await session.scalar(select(func.sum(ChatFile.size)).where(ChatFile.consultation_id == c.id))
    left = limits.consultation_bytes - int(used or 0)
    if isinstance(party, ShopperActor):
        mine = await session.scalar(
            select(func.sum(ChatFile.size))
            .join(Consultation, Consultation.id == ChatFile.consultation_id)
            .where(
                Consultation.shopper_id == c.shopper_id,
                ChatFile.uploaded_by == "shopper",
                ChatFile.created_at >= utcnow() - QUOTA_WINDOW,
            )
        )
        left = min(left, limits.shopper_bytes_per_day - int(mine or 0))
    return left


async def check_upload(
    db: Database,
    store: FileStore,
    consultation_id: uuid.UUID,
    party: Actor,
    limits: UploadLimits,
    content_length: int | None,
) -> Allowance:
    """May ``party`` share a file in this consultation now, and how large? Asked before the
    body is read."""
    async with db.read() as session:
        c = await _consultation_for_upload(session, consultation_id, party, lock=False)
        allowance = Allowance(limits, await _quota_left(session, c, party, limits))
    if allowance.quota_left <= 0:
        raise quota_spent(allowance.quota_left)
    check_declared_length(content_length, allowance)
    await check_disk(store, limits)
    return allowance


@dataclass(frozen=True)
class Received:
    """A stored upload that has no database row yet."""

    file_id: uuid.UUID
    storage_key: str
    filename: str
    content_type: str
    size: int
    sha256: str


async def receive(
    store: FileStore, chunks: AsyncIterator[bytes], raw_filename: str | None, allowance: Allowance
) -> Received:
    """Stream the upload into the store, counting, hashing and sniffing as it goes, and for an
    image reading its pixel size from the header. Refused uploads (too large, over quota, wrong
    type, empty, too many pixels) leave nothing behind."""
    file_id = uuid.uuid4()
    key = storage_key(file_id)
    digest = hashlib.sha256()
    size = 0
    detected: list[str] = []
    pixels: list[ImageSize] = []

    def typed(head: bytes) -> bytes:
        content_type = sniff(head)
        detected.append(content_type)
        if content_type.startswith("image/"):
            pixels.append(ImageSize(content_type))
        return head

    def measured(chunk: bytes) -> bytes:
        if pixels and pixels[0].size is None:
            try:
                found = pixels[0].feed(chunk)
            except Unreadable as exc:
                raise _unreadable(exc) from None
            if found is not None:
                check_pixels(found, allowance.limits.image_pixels)
        return chunk

    async def checked() -> AsyncGenerator[bytes, None]:
        nonlocal size
        # Nothing reaches the store before the type is known.
        head = bytearray()
        async for chunk in chunks:
            size += len(chunk)
            if size > allowance.max_bytes:
                raise allowance.too_large()
            digest.update(chunk)
            if detected:
                yield measured(chunk)
                continue
            head += chunk
            if len(head) >= SNIFF_BYTES:
                yield measured(typed(bytes(head)))
        if not detected:
            if not head:
                raise ValidationFailed("field 'file': the file is empty", code="empty_file")
            yield measured(typed(bytes(head)))
        if pixels:
            try:
                pixels[0].finish()
            except Unreadable as exc:
                raise _unreadable(exc) from None

    async with aclosing(checked()) as source:
        await store.put(key, source)
    content_type = detected[0]
    return Received(
        file_id=file_id,
        storage_key=key,
        filename=sanitize_filename(raw_filename, content_type),
        content_type=content_type,
        size=size,
        sha256=digest.hexdigest(),
    )


def _unreadable(exc: Unreadable) -> ValidationFailed:
    return ValidationFailed(f"field 'file': {exc}", code="image_unreadable")


async def record(
    session: AsyncSession, consultation_id: uuid.UUID, party: Actor, received: Received, limits: UploadLimits
) -> ChatFile:
    """The row for a stored upload; the party, the consultation and the quotas are checked
    again, since any may have changed while the bytes arrived (uploads side by side)."""
    c = await _consultation_for_upload(session, consultation_id, party, lock=True)
    left = await _quota_left(session, c, party, limits)
    if received.size > left:
        raise quota_spent(left)
    row = ChatFile(
        id=received.file_id,
        consultation_id=c.id,
        uploaded_by="shopper" if isinstance(party, ShopperActor) else "staff",
        uploader_staff_id=staff_of(party),
        filename=received.filename,
        content_type=received.content_type,
        size=received.size,
        sha256=received.sha256,
        storage_key=received.storage_key,
    )
    session.add(row)
    await session.flush()
    return row


async def save(
    db: Database,
    store: FileStore,
    consultation_id: uuid.UUID,
    party: Actor,
    chunks: AsyncIterator[bytes],
    raw_filename: str | None,
    allowance: Allowance,
) -> ChatFile:
    """Receive an upload and record it; the stored bytes go again if the row cannot be
    written."""
    received = await receive(store, chunks, raw_filename, allowance)
    try:
        async with db.transaction() as session:
            row = await record(session, consultation_id, party, received, allowance.limits)
    except BaseException:
        await store.delete(received.storage_key)
        raise
    log.info(
        "chat file stored",
        file_id=str(row.id),
        consultation_id=str(consultation_id),
        content_type=row.content_type,
        size=row.size,
    )
    return row


async def for_download(db: Database, file_id: uuid.UUID, party: Actor) -> ChatFile:
    """The file, if ``party`` may read it: the consultation's shopper, its advisor or the
    staff member who uploaded it, and supervisors and admins (whose reads are audited)."""
    async with db.read() as session:
        f = await session.get(ChatFile, file_id)
        c = await session.get(Consultation, f.consultation_id) if f is not None else None
    if f is None or c is None:
        raise NotFound("No such file", code="file_not_found")
    uploader = staff_of(party)
    if _is_party(c, party) or (uploader is not None and f.uploader_staff_id == uploader):
        return f
    if isinstance(party, ShopperActor) or party.role not in READER_ROLES:
        raise Forbidden("You are not a party to this consultation", code="not_a_party")
    await audit.record_alone(
        db,
        actor=party.staff_id,
        action="chat_file.read",
        target_type="chat_file",
        target_id=f.id,
        details={"consultation_id": str(c.id), "filename": f.filename},
    )
    return f


def download_headers(f: ChatFile) -> dict[str, str]:
    """Headers that keep a browser from running the file: the stored type and no sniffing,
    a sandboxing CSP, and a download prompt for anything but an image."""
    content_type = f.content_type if f.content_type in ALLOWED else "application/octet-stream"
    disposition = "inline" if content_type.startswith("image/") else "attachment"
    return {
        "Content-Type": content_type,
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(f.filename, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private",
    }
