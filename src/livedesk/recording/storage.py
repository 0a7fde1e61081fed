"""Where recording files live: the data directory (default) or S3-compatible storage
(``LIVEDESK_RECORDING_STORAGE=s3``, e.g. MinIO). Both read byte ranges, so playback streams
with HTTP Range from either without loading a file into memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from aiobotocore.session import get_session
from aiohttp import web

from livedesk.settings import Settings

CHUNK = 256 * 1024


class RecordingStore(Protocol):
    """Keys are ours (``recordings/<id>/…``), never anything a client chose."""

    async def put_file(self, key: str, path: Path) -> int:
        """Store the local file under ``key`` (the local file may be moved); returns its size."""
        ...

    async def fetch(self, key: str, path: Path) -> None:
        """Copy the stored object to a local file (for joining parts)."""
        ...

    async def size(self, key: str) -> int:
        """The object's size; ``FileNotFoundError`` if it is not there."""
        ...

    def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start``..``end`` inclusive, in chunks."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; nothing happens if it is not there."""
        ...


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key outside the store: {key!r}")
        return path

    async def put_file(self, key: str, path: Path) -> int:
        target = self.path(key)

        def move() -> int:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(target))
            return target.stat().st_size

        return await asyncio.to_thread(move)

    async def fetch(self, key: str, path: Path) -> None:
        source = self.path(key)
        if not source.exists():
            raise FileNotFoundError(key)
        await asyncio.to_thread(shutil.copyfile, source, path)

    async def size(self, key: str) -> int:
        return (await asyncio.to_thread(os.stat, self.path(key))).st_size

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, self.path(key), "rb")
        try:
            await asyncio.to_thread(handle.seek, start)
            left = end - start + 1
            while left > 0:
                chunk = await asyncio.to_thread(handle.read, min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        path = self.path(key)

        def remove() -> None:
            path.unlink(missing_ok=True)
            # Drop the recording's now-empty folder; keep it if another part is still there.
            with contextlib.suppress(OSError):
                path.parent.rmdir()

        await asyncio.to_thread(remove)


class S3Store:
    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.recording_object_bucket
        self._client_args: dict[str, Any] = {
            "region_name": settings.recording_object_region,
            "aws_access_key_id": settings.recording_object_access_key or None,
            "aws_secret_access_key": settings.recording_object_secret_key.get_secret_value() or None,
        }
        if settings.recording_object_endpoint:
            self._client_args["endpoint_url"] = settings.recording_object_endpoint
        self._session = get_session()

    def _client(self) -> Any:
        return self._session.create_client("s3", **self._client_args)

    async def put_file(self, key: str, path: Path) -> int:
        size = (await asyncio.to_thread(os.stat, path)).st_size
        # A file object, not the bytes: a recording can be hundreds of megabytes.
        body = await asyncio.to_thread(open, path, "rb")
        try:
            async with self._client() as client:
                await client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="video/webm")
        finally:
            body.close()
        await asyncio.to_thread(path.unlink, True)
        return size

    async def fetch(self, key: str, path: Path) -> None:
        async with self._client() as client:
            try:
                response = await client.get_object(Bucket=self.bucket, Key=key)
            except client.exceptions.NoSuchKey:
                raise FileNotFoundError(key) from None
            with path.open("wb") as out:
                async with response["Body"] as stream:
                    while chunk := await stream.read(CHUNK):
                        out.write(chunk)

    async def size(self, key: str) -> int:
        async with self._client() as client:
            try:
                head = await client.head_object(Bucket=self.bucket, Key=key)
            except client.exceptions.ClientError as exc:
                raise FileNotFoundError(key) from exc
            return int(head["ContentLength"])

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        async with self._client() as client:
            response = await client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}")
            async with response["Body"] as stream:
                while chunk := await stream.read(CHUNK):
                    yield chunk

    async def delete(self, key: str) -> None:
        async with self._client() as client:
            await client.delete_object(Bucket=self.bucket, Key=key)


def make_store(settings: Settings) -> RecordingStore:
    if settings.recording_storage == "s3":
        return S3Store(settings)
    return LocalStore(settings.data_dir / "recordings")


# The store this process uses, for ``service.erase_for_shopper(session, shopper_id)``, whose
# contract has no app to reach it through. Set and cleared by ``recorder.recording_ctx``.
_default: list[RecordingStore] = []


def set_default_store(store: RecordingStore | None) -> None:
    _default.clear()
    if store is not None:
        _default.append(store)


def default_store() -> RecordingStore | None:
    return _default[0] if _default else None


RECORDING_STORE = web.AppKey("recording_store", RecordingStore)
