"""HTTP routes of the surveys capability: survey definitions and where they are shown
(admins; supervisors read), the intake survey shoppers answer before a call or booking,
and the post-call satisfaction survey (call page, or the mail link of a booked consultation).
Handlers parse, authorise and call the service."""

from __future__ import annotations

import uuid
from datetime import datetime

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r201, r401, r403, r404, r409, r422, r429
from pydantic import BaseModel

from livedesk.identity import (
    OVERSEERS,
    Actor,
    ShopperActor,
    authorise_party,
    bearer_actor,
    guarded,
    require_staff,
)
from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.errors import Forbidden, Unauthenticated, ValidationFailed
from livedesk.kit.http import ErrorResponse, endpoint, model_json
from livedesk.models import Consultation, Role
from livedesk.staff.schemas import IdFilter
from livedesk.surveys import mail, satisfaction, service
from livedesk.surveys.schemas import (
    AssignmentOut,
    AssignmentSet,
    IntakeSubmit,
    IntakeSurveyOut,
    LinkToken,
    ResponseOut,
    SatisfactionByLink,
    SatisfactionFigures,
    SatisfactionLinkInfo,
    SatisfactionOfConsultation,
    SatisfactionOut,
    SatisfactionSubmit,
    SubmittedIntake,
    SurveyArchive,
    SurveyCreate,
    SurveyOut,
    SurveyUpdate,
    SurveyView,
)

ADMIN = (Role.ADMIN,)
# Supervisors read surveys and answers (their board and reviews need them) but change nothing.
READERS = (Role.ADMIN, Role.SUPERVISOR)


async def _visitor(request: web.Request) -> ShopperActor:
    """The shopper behind ``Authorization: Bearer <visitor token>`` (the one rule of
    ``identity.shoppers.authenticate_shopper``: merges followed only when proven, scopes kept)."""
    actor = await bearer_actor(request)
    if actor is None:
        raise Unauthenticated("Send Authorization: Bearer <visitor token>", code="token_missing")
    return actor


def _in_scope(actor: ShopperActor, consultation_id: uuid.UUID) -> None:
    if actor.consultation_id is not None and actor.consultation_id != consultation_id:
        raise Forbidden("You are not a party to this consultation", code="not_a_party")


# ---------------------------------------------------------------- definitions


@guarded(*READERS)
async def list_surveys(
    request: web.Request,
) -> r200[list[SurveyOut]] | r401[ErrorResponse] | r403[ErrorResponse]:
    """Every survey with its current version and where it is shown.

    Tags: surveys
    """
    await require_staff(request, *READERS)
    async with request.app[DB].read() as db:
        return model_json(list[BaseModel](await service.list_surveys(db)))


@guarded(*ADMIN)
async def create_survey(
    request: web.Request, body: SurveyCreate
) -> r201[SurveyOut] | r401[ErrorResponse] | r403[ErrorResponse] | r422[ErrorResponse]:
    """Create a survey (version 1). Questions: short_text, long_text, single_choice,
    multiple_choice (choices may route to a skill, team or language), scale ('1-5' or
    '0-10'), consent; labels in Japanese and English.

    Tags: surveys
    """
    actor = await require_staff(request, *ADMIN)
    async with request.app[DB].transaction() as db:
        out = await service.create_survey(db, body, actor_id=actor.staff_id)
    response = model_json(out, status=201)
    response.headers["Location"] = f"/api/v1/surveys/{out.id}"
    return response


@guarded(*READERS)
async def get_survey(
    request: web.Request, survey_id: uuid.UUID, /
) -> r200[SurveyOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """One survey with its current version.

    Tags: surveys
    """
    await require_staff(request, *READERS)
    async with request.app[DB].read() as db:
        return model_json(await service.get_survey(db, survey_id))


@guarded(*ADMIN)
async def update_survey(
    request: web.Request, survey_id: uuid.UUID, /, body: SurveyUpdate
) -> (
    r200[SurveyOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
):
    """Save an edit as a new version (``base_version`` = the version you edited; 409 if
    someone saved meanwhile). Earlier versions and their answers stay unchanged.

    Tags: surveys
    """
    actor = await require_staff(request, *ADMIN)
    async with request.app[DB].transaction() as db:
        out = await service.update_survey(db, survey_id, body, actor_id=actor.staff_id)
    return model_json(out)


@guarded(*ADMIN)
async def archive_survey(
    request: web.Request, survey_id: uuid.UUID, /, body: SurveyArchive
) -> r200[SurveyOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse] | r422[ErrorResponse]:
    """Archive (shown nowhere, no new answers) or restore a survey; answers are kept.

    Tags: surveys
    """
    await require_staff(request, *ADMIN)
    async with request.app[DB].transaction() as db:
        out = await service.set_archived(db, survey_id, body.archived)
    return model_json(out)


@guarded(*READERS)
async def get_version(
    request: web.Request, survey_id: uuid.UUID, version: int, /
) -> r200[SurveyView] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """One saved version of a survey, exactly as shoppers saw it.

    Tags: surveys
    """
    await require_staff(request, *READERS)
    async with request.app[DB].read() as db:
        return model_json(await service.get_version(db, survey_id, version))


@guarded(*READERS)
async def list_responses(
    request: web.Request, survey_id: uuid.UUID, /
) -> r200[list[ResponseOut]] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """A survey's newest 100 responses, each shown with the questions of the version it answered.

    Tags: surveys
    """
    await require_staff(request, *READERS)
    async with request.app[DB].read() as db:
        return model_json(list[BaseModel](await service.list_responses(db, survey_id)))


@guarded(*READERS)
async def list_assignments(
    request: web.Request,
) -> r200[list[AssignmentOut]] | r401[ErrorResponse] | r403[ErrorResponse]:
    """Which survey is shown before instant calls ('instant') and before booking each consultation type.

    Tags: surveys
    """
    await require_staff(request, *READERS)
    async with request.app[DB].read() as db:
        return model_json(list[BaseModel](await service.list_assignments(db)))


@guarded(*ADMIN)
async def set_assignment(
    request: web.Request, target: str, /, body: AssignmentSet
) -> (
    r200[AssignmentOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
):
    """Show a survey before instant calls (target 'instant') or before booking a consultation
    type (its id); ``survey_id: null`` shows none there.

    Tags: surveys
    """
    await require_staff(request, *ADMIN)
    async with request.app[DB].transaction() as db:
        out = await service.set_assignment(db, target, body.survey_id)
    return model_json(out)


# ---------------------------------------------------------------- intake (shoppers)


@endpoint
async def intake_survey(request: web.Request, consultation_type_id: IdFilter = None) -> r200[IntakeSurveyOut]:
    """The survey a shopper answers before an instant call (no parameter) or before booking
    a consultation type; ``survey`` is null when none is shown there.

    Tags: surveys
    """
    async with request.app[DB].read() as db:
        view = await service.intake_survey_for(db, consultation_type_id)
    return model_json(IntakeSurveyOut(survey=view))


@endpoint
async def submit_intake(
    request: web.Request, body: IntakeSubmit
) -> (
    r201[SubmittedIntake]
    | r401[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
    | r429[ErrorResponse]
):
    """Answer an intake survey (visitor token as ``Authorization: Bearer``). Wrong answers give
    422 with one detail per field (``answers.<question id>``). Pass the ``response_id`` as
    ``survey_response_id`` to ``queue.join`` to route the call by the answers.

    Tags: surveys
    """
    shopper_id = (await _visitor(request)).shopper_id
    settings = request.app[SETTINGS]
    await request.app[RATE_LIMITS].hit(
        settings.chat_rate_limit, "survey.submit", str(shopper_id), message="Too many answers; wait a moment"
    )
    async with request.app[DB].transaction() as db:
        out = await service.submit_intake(
            db,
            survey_id=body.survey_id,
            version=body.version,
            answers=body.answers,
            shopper_id=shopper_id,
            booking_id=body.booking_id,
        )
    return model_json(out, status=201)


# ---------------------------------------------------------------- satisfaction


@endpoint
async def submit_satisfaction(
    request: web.Request, consultation_id: uuid.UUID, /, body: SatisfactionSubmit
) -> (
    r201[SatisfactionOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
):
    """The shopper's post-call survey after hang-up (visitor token as ``Authorization: Bearer``):
    satisfaction 1–5, optional recommendation 0–10, comment. Once per consultation (409 after).

    Tags: surveys
    """
    actor = await _visitor(request)
    _in_scope(actor, consultation_id)
    shopper_id = actor.shopper_id
    async with request.app[DB].transaction() as db:
        out = await satisfaction.submit(db, consultation_id, body, source="call", shopper_id=shopper_id)
    return model_json(out, status=201)


@endpoint
async def get_satisfaction(
    request: web.Request, consultation_id: uuid.UUID, /
) -> r200[SatisfactionOfConsultation] | r401[ErrorResponse] | r403[ErrorResponse]:
    """A consultation's post-call answer (null if none): its shopper (visitor token as
    ``Authorization: Bearer``, so the call page knows it was answered), its advisor,
    supervisors and admins.

    Tags: surveys
    """
    actor: Actor = (
        await _visitor(request) if "Authorization" in request.headers else await require_staff(request)
    )
    async with request.app[DB].read() as db:
        c = await db.get(Consultation, consultation_id)
        # The one party rule, reading; an unknown consultation has no answer for its
        # overseers to read (null) and no party to let in.
        if c is not None:
            authorise_party(actor, c, write=False)
        elif isinstance(actor, ShopperActor) or actor.role not in OVERSEERS:
            raise Forbidden("You are not a party to this consultation", code="not_a_party")
        out = await satisfaction.of_consultation(db, consultation_id)
    return model_json(SatisfactionOfConsultation(satisfaction=out))


def _link_consultation(request: web.Request, token: str) -> uuid.UUID:
    return request.app[mail.LINK_TOKENS].verify(token)


@endpoint
async def satisfaction_link(
    request: web.Request, body: LinkToken
) -> r200[SatisfactionLinkInfo] | r401[ErrorResponse] | r404[ErrorResponse]:
    """What the mail link's page shows (the signed link token is the permission; sent in the
    body so it stays out of logs).

    Tags: surveys
    """
    consultation_id = _link_consultation(request, body.token)
    async with request.app[DB].read() as db:
        return model_json(await satisfaction.link_info(db, consultation_id))


@endpoint
async def submit_satisfaction_by_link(
    request: web.Request, body: SatisfactionByLink
) -> (
    r201[SatisfactionOut]
    | r401[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
):
    """Answer the post-call survey from the mail link of a booked consultation.

    Tags: surveys
    """
    consultation_id = _link_consultation(request, body.token)
    answer = SatisfactionSubmit(csat=body.csat, nps=body.nps, comment=body.comment)
    async with request.app[DB].transaction() as db:
        out = await satisfaction.submit(db, consultation_id, answer, source="mail")
    return model_json(out, status=201)


@guarded(*READERS)
async def satisfaction_figures(
    request: web.Request, start: datetime, end: datetime
) -> r200[SatisfactionFigures] | r401[ErrorResponse] | r403[ErrorResponse] | r422[ErrorResponse]:
    """Post-call answers submitted in [start, end): count, average satisfaction and recommendation.

    Tags: surveys
    """
    await require_staff(request, *READERS)
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ValidationFailed("query fields 'start', 'end': give time zones, and end after start")
    async with request.app[DB].read() as db:
        return model_json(await service.satisfaction_between(db, start, end))


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/surveys", list_surveys)
    app.router.add_post("/api/v1/surveys", create_survey)
    app.router.add_get("/api/v1/surveys/{survey_id}", get_survey)
    app.router.add_put("/api/v1/surveys/{survey_id}", update_survey)
    app.router.add_post("/api/v1/surveys/{survey_id}/archive", archive_survey)
    app.router.add_get("/api/v1/surveys/{survey_id}/versions/{version}", get_version)
    app.router.add_get("/api/v1/surveys/{survey_id}/responses", list_responses)
    app.router.add_get("/api/v1/survey-assignments", list_assignments)
    app.router.add_put("/api/v1/survey-assignments/{target}", set_assignment)
    app.router.add_get("/api/v1/intake-survey", intake_survey)
    app.router.add_post("/api/v1/intake-responses", submit_intake)
    app.router.add_post("/api/v1/consultations/{consultation_id}/satisfaction", submit_satisfaction)
    app.router.add_get("/api/v1/consultations/{consultation_id}/satisfaction", get_satisfaction)
    app.router.add_post("/api/v1/satisfaction/link/info", satisfaction_link)
    app.router.add_post("/api/v1/satisfaction/link", submit_satisfaction_by_link)
    app.router.add_get("/api/v1/satisfaction/figures", satisfaction_figures)
