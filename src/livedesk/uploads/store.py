"""Where uploaded bytes live: a ``FileStore`` keyed by names of our own making, never a
client's file name. Chat files (``consultations/files.py``) and staff photos
(``staff/photos.py``) both write here; the store itself is on the app under ``FILE_STORE``."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

from aiohttp import web

# Uploads are read and served in chunks of this size.
CHUNK_BYTES = 64 * 1024
# Boundaries and part headers around the file are small: a request that declares a body
# longer than the file limit plus this cannot carry an acceptable file.
MULTIPART_OVERHEAD = 64 * 1024


# --- storage --------------------------------------------------------------------------------


class FileStore(Protocol):
    """Where file bytes live. Keys are ours (``storage_key``), never a client's file name."""

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> None:
        """Store the chunks under ``key``, all or nothing: if the chunks raise, nothing is
        left behind and the error propagates."""
        ...

    def open(self, key: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """The stored bytes as chunks; raises ``FileNotFoundError`` for an unknown key."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; nothing happens if it is not there."""
        ...


FILE_STORE: web.AppKey[FileStore] = web.AppKey("file_store")
# A store's ``delete``, handed to code that removes files once its transaction commits.
DeleteFile = Callable[[str], Awaitable[None]]

_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def storage_key(file_id: uuid.UUID) -> str:
    """``<first two characters>/<uuid>``: spreads files over 256 directories."""
    text = str(file_id)
    return f"{text[:2]}/{text}"


class LocalFileStore:
    """Files in a directory on the local disk (``<data dir>/files``), written to a temporary
    name and renamed into place, so a half-written file is never visible under its key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> None:
        target = self._path(key)
        temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
        handle = await asyncio.to_thread(_create, temp)
        try:
            async for chunk in chunks:
                await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(_finish, handle, temp, target)
        except BaseException:
            _discard(handle, temp)
            raise

    @asynccontextmanager
    async def open(self, key: str) -> AsyncIterator[AsyncIterator[bytes]]:
        handle = await asyncio.to_thread(self._path(key).open, "rb")
        try:
            yield _read_chunks(handle)
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)


def _create(temp: Path) -> BinaryIO:
    temp.parent.mkdir(parents=True, exist_ok=True)
    # Readable by the server's user only; no execute bit, ever.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def _finish(handle: BinaryIO, temp: Path, target: Path) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    temp.replace(target)


def _discard(handle: BinaryIO, temp: Path) -> None:
    handle.close()
    temp.unlink(missing_ok=True)


async def _read_chunks(handle: BinaryIO) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
        yield chunk
