"""Upload storage, a piece of the shared kernel: the ``FileStore`` every capability that keeps
uploaded bytes writes through (chat files, staff photos, history attachments), with its
local-disk implementation. What may be uploaded, and by whom, stays with each capability."""

from livedesk.uploads.store import (
    CHUNK_BYTES,
    FILE_STORE,
    MULTIPART_OVERHEAD,
    DeleteFile,
    FileStore,
    LocalFileStore,
    storage_key,
)

__all__ = [
    "CHUNK_BYTES",
    "FILE_STORE",
    "MULTIPART_OVERHEAD",
    "DeleteFile",
    "FileStore",
    "LocalFileStore",
    "storage_key",
]
