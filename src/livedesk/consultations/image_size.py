"""An image's width and height, read from its header as the upload streams in.

What a browser spends on showing an image follows its pixel count, not its file size: a 31 KB
PNG can declare 16000×16000 pixels and cost the viewer a gigabyte. The declared size is all
that is needed to refuse it, so nothing is decoded here: PNG, GIF and WebP state it in their
first 30 bytes; JPEG in its frame header (SOFn), after any number of metadata segments, which
are skipped by their lengths without being kept.
"""

from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Frame headers: SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length: TEM and the restart markers.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


class Unreadable(ValueError):
    """The header does not say how large the image is."""


class ImageSize:
    """Feed the upload's bytes in order; ``size`` is (width, height) once the header has been
    read. Keeps at most a few bytes between chunks."""

    def __init__(self, content_type: str) -> None:
        self.content_type = content_type
        self.size: tuple[int, int] | None = None
        self._buffer = bytearray()
        self._skip = 0  # JPEG: bytes of the current segment still to pass over
        self._started = False

    def feed(self, chunk: bytes) -> tuple[int, int] | None:
        if self.size is not None:
            return self.size
        if self._skip:
            passed = min(self._skip, len(chunk))
            chunk, self._skip = chunk[passed:], self._skip - passed
        self._buffer += chunk
        if self.content_type == "image/jpeg":
            self.size = self._jpeg()
        else:
            self.size = _fixed_header(self.content_type, bytes(self._buffer[:32]))
            if self.size is None and len(self._buffer) >= 32:
                raise Unreadable("the image header is malformed")
        return self.size

    def finish(self) -> tuple[int, int]:
        """The size, once all bytes are in; ``Unreadable`` if the header never said."""
        if self.size is None:
            raise Unreadable("the image ends before its header says how large it is")
        return self.size

    def _jpeg(self) -> tuple[int, int] | None:
        data, pos = self._buffer, 0
        if not self._started:
            if len(data) < 2:
                return None
            if data[:2] != b"\xff\xd8":
                raise Unreadable("not a JPEG start of image")
            self._started, pos = True, 2
        found: tuple[int, int] | None = None
        while len(data) - pos >= 2:
            if data[pos] != 0xFF:
                raise Unreadable("JPEG segment without a marker")
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker in _STANDALONE:
                pos += 2
                continue
            if marker in (0x00, 0xD8, 0xD9, 0xDA):
                raise Unreadable("JPEG image data before its frame header")
            if len(data) - pos < 4:
                break
            (length,) = struct.unpack_from(">H", data, pos + 2)
            if length < 2:
                raise Unreadable("JPEG segment of impossible length")
            if marker in _SOF:
                if len(data) - pos < 9:
                    break
                height, width = struct.unpack_from(">HH", data, pos + 5)
                found = (width, height)
                break
            end = pos + 2 + length
            if end > len(data):
                self._skip, pos = end - len(data), len(data)
                break
            pos = end
        del data[:pos]
        return found


def _fixed_header(content_type: str, head: bytes) -> tuple[int, int] | None:
    """PNG, GIF and WebP: the size at a fixed place near the start (None: not enough bytes)."""
    if content_type == "image/png":
        if len(head) < 24:
            return None
        if head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
            raise Unreadable("PNG without its IHDR header first")
        width, height = struct.unpack_from(">II", head, 16)
        return width, height
    if content_type == "image/gif":
        if len(head) < 10:
            return None
        width, height = struct.unpack_from("<HH", head, 6)
        return width, height
    if content_type == "image/webp":
        return _webp(head)
    raise Unreadable(f"no size is read from {content_type}")


def _webp(head: bytes) -> tuple[int, int] | None:
    if len(head) < 30:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        raise Unreadable("WebP without its RIFF header")
    kind = head[12:16]
    if kind == b"VP8X":  # extended: the canvas, 24-bit sizes minus one
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    if kind == b"VP8L":  # lossless: 14-bit sizes minus one after a signature byte
        if head[20] != 0x2F:
            raise Unreadable("WebP lossless without its signature")
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 ":  # lossy: a key frame's start code, then 14-bit sizes
        if head[23:26] != b"\x9d\x01\x2a":
            raise Unreadable("WebP lossy without a key frame")
        width, height = struct.unpack_from("<HH", head, 26)
        return width & 0x3FFF, height & 0x3FFF
    raise Unreadable("WebP of an unknown kind")
