"""The post-call survey: satisfaction 1–5, an optional 0–10 "would you recommend", and a
comment — once per consultation, from the call page after hang-up or from the mail link a
booked consultation's shopper gets when it closes. Its figures feed the supervisor board."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict, Forbidden, NotFound, Unauthenticated
from livedesk.models import (
    Consultation,
    ConsultationStatus,
    SatisfactionInvitation,
    SatisfactionResponse,
    Shopper,
    Staff,
    TimelineKind,
)
from livedesk.surveys.schemas import (
    SatisfactionFigures,
    SatisfactionLinkInfo,
    SatisfactionOut,
    SatisfactionSubmit,
)
from livedesk.timeline import append_event

_SALT = "livedesk.satisfaction.v1"
# A mail link stays good for a month: people answer mail late, not never.
LINK_MAX_AGE_SECONDS = 30 * 24 * 3600
# A sender that claimed an invitation and died leaves it claimed; after this another retries.
CLAIM_TIMEOUT = timedelta(minutes=5)
ENDED = (ConsultationStatus.WRAP_UP, ConsultationStatus.CLOSED)


class LinkTokens:
    """Signed links to the satisfaction page of one consultation (no login: the link is the
    permission, and it opens that one consultation's survey only)."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a secret key is needed to sign survey links")
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)

    def issue(self, consultation_id: uuid.UUID) -> str:
        return self._serializer.dumps({"c": str(consultation_id)})

    def verify(self, token: str) -> uuid.UUID:
        try:
            data = self._serializer.loads(token, max_age=LINK_MAX_AGE_SECONDS)
            return uuid.UUID(data["c"])
        except SignatureExpired:
            raise Unauthenticated("This survey link has expired", code="link_expired") from None
        except (BadSignature, KeyError, TypeError, ValueError):
            raise Unauthenticated("This survey link is not valid", code="link_invalid") from None


def _out(row: SatisfactionResponse) -> SatisfactionOut:
    return SatisfactionOut(
        consultation_id=row.consultation_id,
        csat=row.csat,
        nps=row.nps,
        comment=row.comment,
        source=row.source,
        submitted_at=row.submitted_at,
    )


async def _ended_consultation(session: AsyncSession, consultation_id: uuid.UUID) -> Consultation:
    c = await session.get(Consultation, consultation_id)
    if c is None:
        raise NotFound("No such consultation", code="consultation_not_found")
    return c


async def submit(
    session: AsyncSession,
    consultation_id: uuid.UUID,
    body: SatisfactionSubmit,
    *,
    source: str,
    shopper_id: uuid.UUID | None = None,
) -> SatisfactionOut:
    """Keep the shopper's satisfaction answer for a consultation that has ended, once, and put
    it on their timeline. ``shopper_id`` is the caller's (call page); a mail link's caller is
    proven by the link and passes None."""
    c = await _ended_consultation(session, consultation_id)
    if shopper_id is not None and c.shopper_id != shopper_id:
        raise Forbidden("You are not a party to this consultation", code="not_a_party")
    if c.status not in ENDED or c.accepted_at is None:
        raise Conflict("The consultation has not ended yet", code="not_ended")
    existing = await session.scalar(
        select(SatisfactionResponse.id).where(SatisfactionResponse.consultation_id == c.id)
    )
    if existing is not None:
        raise Conflict("You have already answered this survey, thank you", code="already_answered")
    row = SatisfactionResponse(
        id=uuid.uuid4(),
        consultation_id=c.id,
        shopper_id=c.shopper_id,
        advisor_id=c.advisor_id,
        csat=body.csat,
        nps=body.nps,
        comment=body.comment,
        source=source,
        submitted_at=utcnow(),
    )
    # Two answers at once (call page and mail link): the unique key decides, cleanly.
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict("You have already answered this survey, thank you", code="already_answered") from None
    recommend = f", would recommend {body.nps}/10" if body.nps is not None else ""
    await append_event(
        session,
        c.shopper_id,
        TimelineKind.SURVEY,
        f"Satisfaction {body.csat}/5{recommend}",
        {
            "survey": "satisfaction",
            "csat": body.csat,
            "nps": body.nps,
            "comment": body.comment,
            "source": source,
            "advisor_id": c.advisor_id,
        },
        consultation_id=c.id,
        ref_id=str(row.id),
    )
    return _out(row)


async def of_consultation(session: AsyncSession, consultation_id: uuid.UUID) -> SatisfactionOut | None:
    row = await session.scalar(
        select(SatisfactionResponse).where(SatisfactionResponse.consultation_id == consultation_id)
    )
    return None if row is None else _out(row)


async def link_info(session: AsyncSession, consultation_id: uuid.UUID) -> SatisfactionLinkInfo:
    c = await _ended_consultation(session, consultation_id)
    advisor = await session.get(Staff, c.advisor_id) if c.advisor_id else None
    shopper = await session.get(Shopper, c.shopper_id)
    answered = await of_consultation(session, c.id)
    return SatisfactionLinkInfo(
        consultation_id=c.id,
        advisor_name=advisor.display_name if advisor else "",
        ended_at=c.ended_at,
        answered=answered is not None,
        locale=shopper.locale if shopper else "ja",
    )


async def satisfaction_between(session: AsyncSession, start: datetime, end: datetime) -> SatisfactionFigures:
    """Post-call answers submitted in [start, end): how many, the average satisfaction (1–5)
    and the average recommendation (0–10, over those who gave one)."""
    count, csat, nps = (
        await session.execute(
            select(
                func.count(SatisfactionResponse.id),
                func.avg(SatisfactionResponse.csat),
                func.avg(SatisfactionResponse.nps),
            ).where(SatisfactionResponse.submitted_at >= start, SatisfactionResponse.submitted_at < end)
        )
    ).one()
    return SatisfactionFigures(
        responses=int(count or 0),
        average_csat=round(float(csat), 2) if csat is not None else None,
        average_nps=round(float(nps), 2) if nps is not None else None,
    )


# ---------------------------------------------------------------- mail invitations


async def invite_after_close(session: AsyncSession, c: Consultation) -> bool:
    """A booked consultation (``extra["booking_id"]``) that closes gets one post-call survey
    mail, if the shopper has an e-mail address. Written in the close's transaction; True when
    there is an invitation waiting to be sent."""
    if c.status != ConsultationStatus.CLOSED or not c.extra.get("booking_id") or c.accepted_at is None:
        return False
    if await session.get(SatisfactionInvitation, c.id) is not None:
        return False
    shopper = await session.get(Shopper, c.shopper_id)
    if shopper is None or not shopper.email:
        return False
    session.add(
        SatisfactionInvitation(
            consultation_id=c.id,
            email=shopper.email,
            locale=shopper.locale or "ja",
            created_at=utcnow(),
            attempts=0,
            last_error="",
        )
    )
    return True


async def claim(session: AsyncSession, consultation_id: uuid.UUID) -> SatisfactionInvitation | None:
    """Take the invitation for sending, unless it was sent or another sender holds it."""
    now = utcnow()
    result = await session.execute(
        update(SatisfactionInvitation)
        .where(
            SatisfactionInvitation.consultation_id == consultation_id,
            SatisfactionInvitation.sent_at.is_(None),
            (SatisfactionInvitation.claimed_at.is_(None))
            | (SatisfactionInvitation.claimed_at < now - CLAIM_TIMEOUT),
        )
        .values(claimed_at=now, attempts=SatisfactionInvitation.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    return await session.get(SatisfactionInvitation, consultation_id, populate_existing=True)


async def mark(session: AsyncSession, consultation_id: uuid.UUID, error: str | None) -> None:
    """Sent (error None), or released for a later retry with the reason."""
    row = await session.get(SatisfactionInvitation, consultation_id, with_for_update=True)
    if row is None:
        return
    if error is None:
        row.sent_at = utcnow()
        row.last_error = ""
    else:
        row.claimed_at = None
        row.last_error = error[:2000]


async def unsent(session: AsyncSession, *, max_attempts: int, limit: int = 50) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(SatisfactionInvitation.consultation_id)
        .where(
            SatisfactionInvitation.sent_at.is_(None),
            SatisfactionInvitation.claimed_at.is_(None),
            SatisfactionInvitation.attempts < max_attempts,
        )
        .order_by(SatisfactionInvitation.created_at)
        .limit(limit)
    )
    return list(rows.all())
