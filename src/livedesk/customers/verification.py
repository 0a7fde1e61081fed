"""E-mail verification: the proof that lets a guest reach the profile holding an address.

Two shapes of one rule. A *link* (the pending booking's "confirm" mail) carries a signed token
naming a verification row; a *code* (six digits the widget asks for) is checked against the
row's hash, five tries at most. Either is single-use (a conditional UPDATE of ``used_at``, so
two clicks at once succeed once) and expires. Every row counts against the address's daily
budget, so no form can be used to mail a stranger more than a few times a day.

The proof belongs to whoever presents it: the code is typed in the browser that asked for it;
a booking link confirms the booking and rotates its links (``booking/service.confirm``), so a
stranger who made the booking with someone else's address gains nothing when they click.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from livedesk.models import Booking, EmailVerification, VerificationPurpose

_SALT = "livedesk.verify.v1"
CODE_TRIES = 5
CODE_MINUTES = 15


class VerificationTokens:
    """Signs the id of a verification row for a mailed link."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a secret key is needed to sign verification links")
        self._serializer = URLSafeSerializer(secret, salt=_SALT)

    def issue(self, verification_id: uuid.UUID) -> str:
        return self._serializer.dumps({"v": verification_id.hex})

    def verify(self, token: str) -> uuid.UUID:
        try:
            data = self._serializer.loads(token)
            return uuid.UUID(hex=str(data["v"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            raise NotFound(
                "This confirmation link is not valid (check that it was copied whole)", code="bad_token"
            ) from None


async def check_budget(
    session: AsyncSession, email: str, per_day: int, *, now: datetime | None = None
) -> None:
    """429 ``mail_budget`` once ``email`` has had ``per_day`` mails that a stranger could have
    caused in the last 24 hours: bookings made with it (each sends a mail) and link codes
    asked for it. Counted in the database, so every process agrees and a restart forgets
    nothing."""
    since = (now or utcnow()) - timedelta(hours=24)
    bookings = await session.scalar(
        select(func.count())
        .select_from(Booking)
        .where(Booking.contact_email == email, Booking.created_at >= since)
    )
    codes = await session.scalar(
        select(func.count())
        .select_from(EmailVerification)
        .where(
            EmailVerification.email == email,
            EmailVerification.purpose == VerificationPurpose.LINK,
            EmailVerification.created_at >= since,
        )
    )
    if int(bookings or 0) + int(codes or 0) >= per_day:
        raise TooManyRequests(
            "This e-mail address has had enough mails from us today; please try again tomorrow",
            code="mail_budget",
            retry_after=3600,
        )


def _code_hash(verification_id: uuid.UUID, code: str) -> str:
    return hashlib.sha256(f"{verification_id.hex}:{code}".encode()).hexdigest()


async def start(
    session: AsyncSession,
    *,
    shopper_id: uuid.UUID,
    email: str,
    purpose: VerificationPurpose,
    expires_at: datetime,
    booking_id: uuid.UUID | None = None,
    with_code: bool = False,
) -> tuple[EmailVerification, str]:
    """A new verification row; with ``with_code`` also the code to mail (only its hash is
    kept). The caller checked the budget in the same transaction."""
    row = EmailVerification(
        id=uuid.uuid4(),
        shopper_id=shopper_id,
        email=email,
        purpose=purpose,
        booking_id=booking_id,
        code_hash="",
        attempts=0,
        created_at=utcnow(),
        expires_at=expires_at,
    )
    code = ""
    if with_code:
        code = f"{secrets.randbelow(1_000_000):06d}"
        row.code_hash = _code_hash(row.id, code)
    session.add(row)
    await session.flush()
    return row, code


async def _use(session: AsyncSession, row: EmailVerification, now: datetime) -> None:
    result = await session.execute(
        update(EmailVerification)
        .where(EmailVerification.id == row.id, EmailVerification.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    if result.rowcount != 1:
        raise Conflict("This link has already been used", code="link_used")
    row.used_at = now


async def consume_link(
    session: AsyncSession, verification_id: uuid.UUID, *, now: datetime | None = None
) -> EmailVerification:
    """Use a link's verification once. 404 ``bad_token`` (gone), 409 ``link_used``,
    409 ``link_expired``."""
    now = now or utcnow()
    row = await session.get(EmailVerification, verification_id, with_for_update=True)
    if row is None:
        raise NotFound("This confirmation link is no longer valid", code="bad_token")
    if row.used_at is not None:
        raise Conflict("This link has already been used", code="link_used")
    if row.expires_at <= now:
        raise Conflict("This link has expired", code="link_expired")
    await _use(session, row, now)
    return row


async def consume_code(
    session: AsyncSession,
    verification_id: uuid.UUID,
    code: str,
    *,
    shopper_id: uuid.UUID,
    now: datetime | None = None,
) -> tuple[EmailVerification, bool]:
    """Check a typed code, in the browser (guest) that asked for it: the verification and
    whether the code was right. A wrong code's try is counted, and the caller commits it
    before answering ``wrong_code`` (raising here would roll the count back). After
    ``CODE_TRIES`` the verification is spent (409 ``too_many_tries``)."""
    now = now or utcnow()
    row = await session.get(EmailVerification, verification_id, with_for_update=True)
    if row is None or row.shopper_id != shopper_id or row.purpose != VerificationPurpose.LINK:
        raise NotFound("No such verification for this visitor", code="verification_not_found")
    if row.used_at is not None:
        raise Conflict("This code has already been used", code="link_used")
    if row.expires_at <= now:
        raise Conflict("This code has expired; ask for a new one", code="link_expired")
    if row.attempts >= CODE_TRIES:
        raise Conflict("Too many wrong codes; ask for a new one", code="too_many_tries")
    row.attempts += 1
    if not hmac.compare_digest(row.code_hash, _code_hash(row.id, code.strip())):
        await session.flush()
        return row, False
    await _use(session, row, now)
    return row, True


def wrong_code(tries_used: int) -> ValidationFailed:
    return ValidationFailed(
        "field 'code': this code is not right",
        code="wrong_code",
        details=[{"field": "code", "message": f"{max(0, CODE_TRIES - tries_used)} tries left"}],
    )
