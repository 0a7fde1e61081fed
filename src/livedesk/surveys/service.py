"""The rules of surveys: versioned definitions and where they are shown, the intake answers
a shopper gives before a call or booking, and what those answers mean for routing.

Every edit of a survey writes a new version; a response keeps the version it answered, so
later edits never change nor break what was answered before. Services never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from livedesk.models import (
    Booking,
    Consultation,
    Survey,
    SurveyAssignment,
    SurveyResponse,
    SurveyVersion,
    Team,
    TimelineKind,
)
from livedesk.surveys import answers as answer_rules
from livedesk.surveys.satisfaction import satisfaction_between
from livedesk.surveys.schemas import (
    INSTANT,
    AssignmentOut,
    ChoiceRouting,
    IntakeShown,
    Label,
    OptionalLabel,
    Question,
    ResponseOut,
    RoutingHints,
    SubmittedIntake,
    SurveyContent,
    SurveyCreate,
    SurveyOut,
    SurveyUpdate,
    SurveyView,
)
from livedesk.timeline import append_event, live_shopper_id

__all__ = [
    "INSTANT",
    "RoutingHints",
    "SubmittedIntake",
    "SurveyView",
    "intake_survey_for",
    "satisfaction_between",
    "submit_intake",
]


def _view(survey: Survey, version: SurveyVersion) -> SurveyView:
    return SurveyView(
        id=survey.id,
        version=version.version,
        name=survey.name,
        title=Label.model_validate(version.title),
        description=OptionalLabel.model_validate(version.description),
        questions=[Question.model_validate(q) for q in version.questions],
    )


def target_of(consultation_type_id: uuid.UUID | None) -> str:
    """The assignment key: "instant" for talk-now calls, else the consultation type's id."""
    return INSTANT if consultation_type_id is None else str(consultation_type_id)


async def _version(session: AsyncSession, survey_id: uuid.UUID, version: int) -> SurveyVersion | None:
    found: SurveyVersion | None = await session.scalar(
        select(SurveyVersion).where(SurveyVersion.survey_id == survey_id, SurveyVersion.version == version)
    )
    return found


async def _survey(session: AsyncSession, survey_id: uuid.UUID, *, lock: bool = False) -> Survey:
    survey = await session.get(Survey, survey_id, with_for_update=lock)
    if survey is None:
        raise NotFound("No such survey", code="survey_not_found")
    return survey


# ---------------------------------------------------------------- definitions (admin)


async def _check_teams(session: AsyncSession, content: SurveyContent) -> None:
    wanted = {
        choice.routing.team_id
        for q in content.questions
        for choice in q.choices
        if choice.routing.team_id is not None
    }
    if not wanted:
        return
    known = set((await session.scalars(select(Team.id).where(Team.id.in_(wanted)))).all())
    missing = sorted(str(t) for t in wanted - known)
    if missing:
        raise ValidationFailed(
            f"body field 'questions': no such team {missing[0]}",
            details=[{"in": "body", "field": "questions", "message": f"no such team {t}"} for t in missing],
        )


def _version_row(
    survey_id: uuid.UUID, number: int, content: SurveyContent, actor: uuid.UUID | None
) -> SurveyVersion:
    return SurveyVersion(
        id=uuid.uuid4(),
        survey_id=survey_id,
        version=number,
        title=content.title.model_dump(),
        description=content.description.model_dump(),
        questions=[q.model_dump(mode="json") for q in content.questions],
        created_by_id=actor,
        created_at=utcnow(),
    )


async def _assigned_to(session: AsyncSession, survey_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    rows = await session.execute(
        select(SurveyAssignment.survey_id, SurveyAssignment.target)
        .where(SurveyAssignment.survey_id.in_(survey_ids))
        .order_by(SurveyAssignment.target)
    )
    found: dict[uuid.UUID, list[str]] = {}
    for survey_id, target in rows.all():
        found.setdefault(survey_id, []).append(target)
    return found


async def _out(session: AsyncSession, survey: Survey) -> SurveyOut:
    version = await _version(session, survey.id, survey.current_version)
    assert version is not None
    assigned = await _assigned_to(session, [survey.id])
    return SurveyOut(
        id=survey.id,
        name=survey.name,
        current_version=survey.current_version,
        archived=survey.archived,
        assigned_to=assigned.get(survey.id, []),
        created_at=survey.created_at,
        updated_at=survey.updated_at,
        current=_view(survey, version),
    )


async def list_surveys(session: AsyncSession) -> list[SurveyOut]:
    """Every survey with its current version, by name."""
    surveys = (await session.scalars(select(Survey).order_by(Survey.name, Survey.id))).all()
    return [await _out(session, s) for s in surveys]


async def get_survey(session: AsyncSession, survey_id: uuid.UUID) -> SurveyOut:
    return await _out(session, await _survey(session, survey_id))


async def get_version(session: AsyncSession, survey_id: uuid.UUID, version: int) -> SurveyView:
    """Any version ever saved — what an old response answered."""
    survey = await _survey(session, survey_id)
    row = await _version(session, survey_id, version)
    if row is None:
        raise NotFound(f"The survey has no version {version}", code="survey_version_not_found")
    return _view(survey, row)


async def create_survey(
    session: AsyncSession,
    body: SurveyCreate,
    *,
    actor_id: uuid.UUID | None,
    survey_id: uuid.UUID | None = None,
) -> SurveyOut:
    """A new survey at version 1 (not shown anywhere until assigned)."""
    await _check_teams(session, body)
    now = utcnow()
    survey = Survey(
        id=survey_id or uuid.uuid4(), name=body.name, current_version=1, archived=False, created_at=now
    )
    session.add(survey)
    await session.flush()
    session.add(_version_row(survey.id, 1, body, actor_id))
    await session.flush()
    return await _out(session, survey)


async def update_survey(
    session: AsyncSession, survey_id: uuid.UUID, body: SurveyUpdate, *, actor_id: uuid.UUID
) -> SurveyOut:
    """Save an edit as the next version. Earlier versions and their responses stay as they
    were; new shoppers get the new version."""
    survey = await _survey(session, survey_id, lock=True)
    if body.base_version != survey.current_version:
        raise Conflict(
            f"The survey was changed meanwhile (now version {survey.current_version}); reload and edit again",
            code="survey_changed",
            details={"current_version": survey.current_version},
        )
    await _check_teams(session, body)
    survey.current_version += 1
    if body.name is not None:
        survey.name = body.name
    survey.updated_at = utcnow()
    session.add(_version_row(survey.id, survey.current_version, body, actor_id))
    await session.flush()
    return await _out(session, survey)


async def set_archived(session: AsyncSession, survey_id: uuid.UUID, archived: bool) -> SurveyOut:
    """An archived survey is shown nowhere (its assignments go) and takes no new answers;
    its versions and responses stay."""
    survey = await _survey(session, survey_id, lock=True)
    survey.archived = archived
    survey.updated_at = utcnow()
    if archived:
        for row in (
            await session.scalars(select(SurveyAssignment).where(SurveyAssignment.survey_id == survey_id))
        ).all():
            await session.delete(row)
    await session.flush()
    return await _out(session, survey)


async def list_assignments(session: AsyncSession) -> list[AssignmentOut]:
    rows = await session.execute(
        select(SurveyAssignment.target, Survey.id, Survey.name)
        .join(Survey, Survey.id == SurveyAssignment.survey_id)
        .order_by(SurveyAssignment.target)
    )
    return [AssignmentOut(target=t, survey_id=sid, survey_name=name) for t, sid, name in rows.all()]


def parse_target(target: str) -> str:
    if target == INSTANT:
        return target
    try:
        return str(uuid.UUID(target))
    except ValueError:
        raise ValidationFailed(
            "path field 'target': use 'instant' or a consultation type id",
            details=[{"in": "path", "field": "target", "message": "'instant' or a UUID"}],
        ) from None


async def set_assignment(session: AsyncSession, target: str, survey_id: uuid.UUID | None) -> AssignmentOut:
    """Show ``survey_id`` before instant calls ("instant") or before booking one consultation
    type; None stops showing a survey there."""
    key = parse_target(target)
    row = await session.get(SurveyAssignment, key, with_for_update=True)
    if survey_id is None:
        if row is not None:
            await session.delete(row)
        return AssignmentOut(target=key, survey_id=None, survey_name=None)
    survey = await _survey(session, survey_id)
    if survey.archived:
        raise Conflict("An archived survey cannot be shown", code="survey_archived")
    if row is None:
        row = SurveyAssignment(target=key, survey_id=survey_id, updated_at=utcnow())
        session.add(row)
    else:
        row.survey_id = survey_id
        row.updated_at = utcnow()
    await session.flush()
    return AssignmentOut(target=key, survey_id=survey.id, survey_name=survey.name)


# ---------------------------------------------------------------- intake (shoppers)


async def intake_survey_for(
    session: AsyncSession, consultation_type_id: uuid.UUID | None
) -> SurveyView | None:
    """The survey to show before an instant call (None) or before booking a consultation
    type, in its current version; None when no survey is assigned there."""
    survey = await session.scalar(
        select(Survey)
        .join(SurveyAssignment, SurveyAssignment.survey_id == Survey.id)
        .where(SurveyAssignment.target == target_of(consultation_type_id), Survey.archived.is_(False))
    )
    if survey is None:
        return None
    version = await _version(session, survey.id, survey.current_version)
    return None if version is None else _for_shoppers(_view(survey, version))


def _for_shoppers(view: SurveyView) -> SurveyView:
    """The survey as shoppers get it: where each choice routes (skills, team ids) is staff
    business, so it is left out; answers are routed from the stored version anyway."""
    questions = [
        q.model_copy(
            update={"choices": [c.model_copy(update={"routing": ChoiceRouting()}) for c in q.choices]}
        )
        for q in view.questions
    ]
    return view.model_copy(update={"questions": questions})


def _summary(view: SurveyView) -> str:
    return f"Answered the survey “{view.title.en}” (version {view.version})"


async def submit_intake(
    session: AsyncSession,
    *,
    survey_id: uuid.UUID,
    version: int,
    answers: dict[str, Any],
    shopper_id: uuid.UUID,
    consultation_id: uuid.UUID | None = None,
    booking_id: uuid.UUID | None = None,
) -> SubmittedIntake:
    """Check and keep a shopper's answers to the version they were shown, put them on the
    shopper's timeline, and say what they mean for routing. Raises ``ValidationFailed`` with
    one detail per wrong field (``answers.<question id>``), and for a ``booking_id`` that is
    not one of the shopper's own bookings."""
    if booking_id is not None:
        await _require_own_booking(session, booking_id, shopper_id)
    survey = await _survey(session, survey_id)
    if survey.archived:
        raise Conflict("This survey no longer takes answers", code="survey_archived")
    row = await _version(session, survey_id, version)
    if row is None:
        raise NotFound(f"The survey has no version {version}", code="survey_version_not_found")
    view = _view(survey, row)
    cleaned, errors = answer_rules.check_answers(view, answers)
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationFailed(
            f"field 'answers.{first.question_id}': {first.message}{more}",
            details=[e.as_detail() for e in errors],
        )
    hints = answer_rules.routing_of(view, cleaned)
    response = SurveyResponse(
        id=uuid.uuid4(),
        survey_id=survey.id,
        survey_version_id=row.id,
        version=row.version,
        shopper_id=shopper_id,
        consultation_id=consultation_id,
        booking_id=booking_id,
        answers=cleaned,
        routing=hints.model_dump(mode="json"),
        submitted_at=utcnow(),
    )
    session.add(response)
    await session.flush()
    await append_event(
        session,
        shopper_id,
        TimelineKind.SURVEY,
        _summary(view),
        {
            "survey": "intake",
            "response_id": response.id,
            "survey_id": survey.id,
            "version": row.version,
            "title": view.title.model_dump(),
            "answers": [a.model_dump(mode="json") for a in answer_rules.shown(view, cleaned)],
            "booking_id": booking_id,
        },
        consultation_id=consultation_id,
        ref_id=str(response.id),
    )
    return SubmittedIntake(response_id=response.id, routing=hints)


async def _require_own_booking(session: AsyncSession, booking_id: uuid.UUID, shopper_id: uuid.UUID) -> None:
    """Answers tied to a booking reach that booking's consultation and its advisor, so they
    may name only the shopper's own booking. Someone else's booking and no booking get the
    same answer: whether a booking id exists is not told."""
    owner = await session.scalar(select(Booking.shopper_id).where(Booking.id == booking_id))
    # A merge moves bookings to the surviving profile; a visitor token may still name the
    # merged-away one.
    if owner is not None and (
        owner == shopper_id or owner == await live_shopper_id(session, shopper_id, lock=False)
    ):
        return
    raise ValidationFailed("field 'booking_id': not one of your bookings", code="booking_not_yours")


async def _shown(session: AsyncSession, response: SurveyResponse) -> IntakeShown:
    version = await session.get(SurveyVersion, response.survey_version_id)
    survey = await session.get(Survey, response.survey_id)
    assert version is not None
    assert survey is not None
    view = _view(survey, version)
    return IntakeShown(
        response_id=response.id,
        survey_id=response.survey_id,
        version=response.version,
        title=view.title,
        submitted_at=response.submitted_at,
        answers=answer_rules.shown(view, response.answers),
    )


async def response_for_queue(
    session: AsyncSession, response_id: uuid.UUID, shopper_id: uuid.UUID
) -> tuple[SurveyResponse, RoutingHints]:
    """The shopper's own, not yet used intake response and its routing hints, for queue.join."""
    response = await session.get(SurveyResponse, response_id, with_for_update=True)
    if response is None or response.shopper_id != shopper_id:
        # Someone else's response is as good as none: its existence is not told.
        raise NotFound("No such survey response", code="survey_response_not_found")
    return response, RoutingHints.model_validate(response.routing)


async def link_to_consultation(session: AsyncSession, response: SurveyResponse, c: Consultation) -> None:
    """Tie an intake response to the consultation it led to, once; the consultation carries
    the readable answers (for the advisor's offer) and the teams routing should prefer."""
    if response.consultation_id is not None and response.consultation_id != c.id:
        raise Conflict("This survey response was used for another consultation", code="survey_response_used")
    if c.extra.get("intake") is not None and response.consultation_id != c.id:
        return
    response.consultation_id = c.id
    shown = await _shown(session, response)
    hints = RoutingHints.model_validate(response.routing)
    # A new dict, so the JSON column sees the change.
    c.extra = {
        **c.extra,
        "intake": shown.model_dump(mode="json"),
        "team_ids": [str(t) for t in hints.team_ids],
    }


async def attach_response(session: AsyncSession, response_id: uuid.UUID, c: Consultation) -> None:
    """For a consultation started from a booking: the answers given when booking become the
    consultation's intake (the advisor sees them in the offer and during the call)."""
    response = await session.get(SurveyResponse, response_id, with_for_update=True)
    if response is None or response.shopper_id != c.shopper_id:
        raise NotFound("No such survey response", code="survey_response_not_found")
    await link_to_consultation(session, response, c)


async def responses_of_consultation(session: AsyncSession, consultation_id: uuid.UUID) -> list[IntakeShown]:
    rows = await session.scalars(
        select(SurveyResponse)
        .where(SurveyResponse.consultation_id == consultation_id)
        .order_by(SurveyResponse.submitted_at)
    )
    return [await _shown(session, r) for r in rows.all()]


async def list_responses(
    session: AsyncSession, survey_id: uuid.UUID, *, limit: int = 100
) -> list[ResponseOut]:
    """A survey's newest responses, each as answered (its own version's questions)."""
    await _survey(session, survey_id)
    rows = await session.scalars(
        select(SurveyResponse)
        .where(SurveyResponse.survey_id == survey_id)
        .order_by(SurveyResponse.submitted_at.desc(), SurveyResponse.id)
        .limit(limit)
    )
    result = []
    for r in rows.all():
        shown = await _shown(session, r)
        result.append(
            ResponseOut(
                **shown.model_dump(),
                shopper_id=r.shopper_id,
                consultation_id=r.consultation_id,
                booking_id=r.booking_id,
            )
        )
    return result


def require_party(c: Consultation, shopper_id: uuid.UUID) -> None:
    if c.shopper_id != shopper_id:
        raise Forbidden("You are not a party to this consultation", code="not_a_party")
