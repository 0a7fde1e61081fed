"""Figures the board takes from other capabilities, through their services: revenue and
conversion from payments, satisfaction from surveys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.payments import service as payments
from livedesk.supervision.schemas import RevenueLine, Satisfaction
from livedesk.surveys import service as surveys


@dataclass(frozen=True)
class Money:
    """What payments and surveys said about a day (brand-wide)."""

    revenue: Sequence[RevenueLine] = ()
    satisfaction: Satisfaction | None = None

    @property
    def paid_consultations(self) -> int:
        return sum(line.paid_consultations for line in self.revenue)


async def money_between(session: AsyncSession, start: datetime, end: datetime) -> Money:
    """Revenue (per currency, net of refunds, with paid consultations) and satisfaction of
    [start, end)."""
    revenue = await payments.revenue_between(session, start, end)
    answers = await surveys.satisfaction_between(session, start, end)
    return Money(
        revenue=[
            RevenueLine(
                currency=line.currency,
                amount_minor=line.amount_minor,
                paid_consultations=line.paid_consultations,
            )
            for line in revenue
        ],
        satisfaction=Satisfaction(
            responses=answers.responses, average_csat=answers.average_csat, average_nps=answers.average_nps
        ),
    )
