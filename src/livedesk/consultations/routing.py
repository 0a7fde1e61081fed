"""Who gets offered a waiting consultation — pure rules, no I/O.

1. The nominated advisor, if they can take it now.
2. If the shopper chose to wait for the nominated advisor: nobody else.
3. Otherwise advisors who can take it, best match first (skills and language, then
   language, then skills, then anyone; within each, the team the survey answers asked for
   first), longest idle first within a tier.
Advisors who already passed on it (declined or let the offer time out) are skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from livedesk.models import ConsultationKind


@dataclass(frozen=True)
class Candidate:
    staff_id: uuid.UUID
    skills: frozenset[str]
    languages: frozenset[str]
    idle_since: datetime
    chats: int
    in_call: bool
    has_pending_offer: bool
    team_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Request:
    kind: ConsultationKind
    nominated: uuid.UUID | None
    wait_for_nominated: bool
    skills: frozenset[str]
    language: str | None
    passed_over: frozenset[uuid.UUID]
    # Teams the shopper's survey answers point to (empty: any team).
    teams: frozenset[uuid.UUID] = frozenset()


def can_take(candidate: Candidate, kind: ConsultationKind, max_chats: int) -> bool:
    """One call at a time; several chats up to the limit; one offer at a time."""
    if candidate.has_pending_offer or candidate.in_call:
        return False
    if kind == ConsultationKind.CHAT:
        return candidate.chats < max_chats
    return True


def _tier(candidate: Candidate, request: Request) -> tuple[int, int]:
    skills_ok = request.skills <= candidate.skills
    language_ok = request.language is None or request.language in candidate.languages
    team = 0 if not request.teams or candidate.team_id in request.teams else 1
    if skills_ok and language_ok:
        return 0, team
    if language_ok:
        return 1, team
    if skills_ok:
        return 2, team
    return 3, team


def choose_advisor(request: Request, candidates: Iterable[Candidate], max_chats: int) -> uuid.UUID | None:
    able = [
        c
        for c in candidates
        if c.staff_id not in request.passed_over and can_take(c, request.kind, max_chats)
    ]
    if request.nominated is not None:
        for candidate in able:
            if candidate.staff_id == request.nominated:
                return candidate.staff_id
        if request.wait_for_nominated:
            return None
    if not able:
        return None
    best = min(able, key=lambda c: (_tier(c, request), c.idle_since, str(c.staff_id)))
    return best.staff_id
