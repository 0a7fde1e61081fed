"""Routing rules with what survey answers add: the team preference sits inside the skill and
language tiers (it never beats a better skill or language match), idleness decides last."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from livedesk.consultations.routing import Candidate, Request, choose_advisor
from livedesk.models import ConsultationKind

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TEAM = uuid.uuid4()
OTHER_TEAM = uuid.uuid4()


def advisor(
    *, skills: tuple[str, ...] = (), team: uuid.UUID | None = None, idle_minutes: int = 0
) -> Candidate:
    return Candidate(
        staff_id=uuid.uuid4(),
        skills=frozenset(skills),
        languages=frozenset({"ja"}),
        idle_since=NOW - timedelta(minutes=idle_minutes),
        chats=0,
        in_call=False,
        has_pending_offer=False,
        team_id=team,
    )


def request(*, skills: tuple[str, ...] = (), teams: tuple[uuid.UUID, ...] = ()) -> Request:
    return Request(
        kind=ConsultationKind.VIDEO,
        nominated=None,
        wait_for_nominated=False,
        skills=frozenset(skills),
        language=None,
        passed_over=frozenset(),
        teams=frozenset(teams),
    )


def test_the_named_team_comes_before_a_longer_idle_advisor() -> None:
    outsider = advisor(team=OTHER_TEAM, idle_minutes=60)
    member = advisor(team=TEAM, idle_minutes=1)
    assert choose_advisor(request(teams=(TEAM,)), [outsider, member], 3) == member.staff_id
    # Without a team in the answers, idleness decides as before.
    assert choose_advisor(request(), [outsider, member], 3) == outsider.staff_id


def test_a_skill_match_still_beats_a_team_match() -> None:
    skilled = advisor(skills=("skincare",), team=OTHER_TEAM)
    member = advisor(team=TEAM, idle_minutes=60)
    chosen = choose_advisor(request(skills=("skincare",), teams=(TEAM,)), [member, skilled], 3)
    assert chosen == skilled.staff_id


def test_any_of_several_named_teams_will_do() -> None:
    loner = advisor(idle_minutes=90)
    second = advisor(team=OTHER_TEAM, idle_minutes=5)
    assert choose_advisor(request(teams=(TEAM, OTHER_TEAM)), [loner, second], 3) == second.staff_id
