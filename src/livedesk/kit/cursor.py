"""The opaque page cursor of keyset-paged lists: the (time, id) sort key of the last row of a
page, which the next page starts after. One format for every such list (timeline, audit log)."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime, timedelta

from livedesk.kit.errors import ValidationFailed

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    """An opaque position after which the next page starts: the sort key of the last row."""
    # Whole microseconds since the epoch: exact on both databases, unlike a float.
    micros = (at - _EPOCH) // timedelta(microseconds=1)
    raw = f"{micros}.{row_id.hex}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(
    cursor: str, *, field: str = "cursor", hint: str = "pass next_cursor back unchanged"
) -> tuple[datetime, uuid.UUID]:
    """The sort key a cursor stands for; ValidationFailed (422, naming the query ``field``)
    when it is not one this API issued."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        micros_text, hex_id = text.split(".")
        micros = int(micros_text)
        row_id = uuid.UUID(hex=hex_id)
        at = _EPOCH + timedelta(microseconds=micros)
    except (ValueError, UnicodeError, binascii.Error, OverflowError):
        raise ValidationFailed(
            f"query field '{field}': not a cursor this API issued ({hint})",
            details=[{"in": "query", "field": field, "message": "invalid cursor"}],
        ) from None
    return at, row_id
