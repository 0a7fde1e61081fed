"""What the surveys capability forgets when a shopper is anonymised (privacy requests).

Intake answers stay for their choices (which topic, which language: the figures need them),
but every typed answer goes; post-call scores stay without their comment; a satisfaction
invitation (an e-mail address and a mail still to send) is deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.models import (
    Consultation,
    SatisfactionInvitation,
    SatisfactionResponse,
    SurveyResponse,
    SurveyVersion,
)

# Answers that can only be one of the survey's own values; anything else (typed text, or a
# question type added later) is dropped.
KEPT_ANSWER_TYPES = frozenset({"single_choice", "multiple_choice", "scale", "consent"})


async def forget_shoppers(session: AsyncSession, shopper_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Drop typed intake answers, satisfaction comments and invitations of the shoppers, in the
    caller's transaction; returns counts per table."""
    rows = (
        await session.execute(
            select(SurveyResponse.id, SurveyResponse.answers, SurveyVersion.questions)
            .join(SurveyVersion, SurveyVersion.id == SurveyResponse.survey_version_id)
            .where(SurveyResponse.shopper_id.in_(shopper_ids))
        )
    ).all()
    for response_id, answers, questions in rows:
        kept_ids = {q.get("id") for q in questions if q.get("type") in KEPT_ANSWER_TYPES}
        await session.execute(
            update(SurveyResponse)
            .where(SurveyResponse.id == response_id)
            .values(answers={k: v for k, v in (answers or {}).items() if k in kept_ids})
            .execution_options(synchronize_session=False)
        )
    comments = await session.execute(
        update(SatisfactionResponse)
        .where(SatisfactionResponse.shopper_id.in_(shopper_ids))
        .values(comment="")
        .execution_options(synchronize_session=False)
    )
    invitations = await session.execute(
        delete(SatisfactionInvitation)
        .where(
            SatisfactionInvitation.consultation_id.in_(
                select(Consultation.id).where(Consultation.shopper_id.in_(shopper_ids))
            )
        )
        .execution_options(synchronize_session=False)
    )
    return {
        "survey_responses": len(rows),
        "satisfaction_responses": int(getattr(comments, "rowcount", 0)),
        "satisfaction_invitations": int(getattr(invitations, "rowcount", 0)),
    }
