"""Surveys through the real app: admins define versioned surveys and say where they show;
shoppers answer (clear per-field errors), the answers route the call and reach the advisor's
offer, the timeline has them, and editing a survey never alters earlier answers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select, update

from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.kit.errors import NotFound
from livedesk.models import (
    AdvisorPresence,
    Booking,
    BookingStatus,
    Consultation,
    ConsultationType,
    Role,
    Shopper,
    SurveyResponse,
    SurveyVersion,
    Team,
    TimelineEvent,
    TimelineKind,
)
from livedesk.settings import Settings
from livedesk.surveys import service
from tests.conftest import login


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"presence_grace_seconds": 0.0, "offer_timeout_seconds": 5.0})


def _label(text: str) -> dict[str, str]:
    return {"ja": f"{text}(ja)", "en": text}


def skin_survey(team_id: uuid.UUID | None = None) -> dict[str, Any]:
    makeup_routing: dict[str, Any] = {"skill": "makeup"}
    if team_id is not None:
        makeup_routing["team_id"] = str(team_id)
    return {
        "name": "Before your call",
        "title": _label("Before your call"),
        "questions": [
            {
                "id": "topic",
                "type": "single_choice",
                "label": _label("What would you like to talk about?"),
                "required": True,
                "choices": [
                    {"value": "skincare", "label": _label("Skin care"), "routing": {"skill": "skincare"}},
                    {"value": "makeup", "label": _label("Make-up"), "routing": makeup_routing},
                ],
            },
            {"id": "concern", "type": "long_text", "label": _label("Anything we should know?")},
            {"id": "age", "type": "scale", "scale": "1-5", "label": _label("How urgent?"), "required": True},
            {
                "id": "consent",
                "type": "consent",
                "label": _label("I agree to the privacy policy"),
                "required": True,
            },
        ],
    }


async def _admin_headers(live: Any, make_staff: Any) -> dict[str, str]:
    admin = await make_staff(Role.ADMIN)
    return await login(live.http, admin)


async def _create_and_assign(live: Any, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    created = await live.http.post("/api/v1/surveys", json=body, headers=headers)
    assert created.status == 201, await created.text()
    survey: dict[str, Any] = await created.json()
    assigned = await live.http.put(
        "/api/v1/survey-assignments/instant", json={"survey_id": survey["id"]}, headers=headers
    )
    assert assigned.status == 200, await assigned.text()
    fetched: dict[str, Any] = await (
        await live.http.get(f"/api/v1/surveys/{survey['id']}", headers=headers)
    ).json()
    return fetched


@pytest.fixture
async def shop(live: Any) -> AsyncIterator[Shop]:
    async with aiohttp.ClientSession(base_url=live.url) as http:
        yield Shop(http)


class Shop:
    """The shopper's side of HTTP: its own client, so no staff cookie rides along."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http

    async def visitor(self) -> dict[str, Any]:
        response = await self.http.post("/api/v1/visitors", json={})
        assert response.status == 201, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def get(self, path: str, **params: str) -> Any:
        return await (await self.http.get(path, params=params)).json()


async def _answer(
    shop: Shop, token: str, survey: dict[str, Any], answers: dict[str, Any], version: int = 1
) -> Any:
    return await shop.http.post(
        "/api/v1/intake-responses",
        json={"survey_id": survey["id"], "version": version, "answers": answers},
        headers={"Authorization": f"Bearer {token}"},
    )


async def _online(live: Any, account: Any) -> Any:
    console = await live.staff(account)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    return console


GOOD = {"topic": "skincare", "concern": "Dry skin in winter", "age": 4, "consent": True}


async def test_admin_defines_assigns_and_shopper_sees_the_current_version(
    live: Any, shop: Shop, make_staff: Any
) -> None:
    headers = await _admin_headers(live, make_staff)
    assert (await shop.get("/api/v1/intake-survey")) == {"survey": None}
    survey = await _create_and_assign(live, headers, skin_survey())
    assert survey["current_version"] == 1
    assert survey["assigned_to"] == ["instant"]
    shown = (await shop.get("/api/v1/intake-survey"))["survey"]
    assert shown["id"] == survey["id"]
    assert [q["id"] for q in shown["questions"]] == ["topic", "concern", "age", "consent"]
    assert shown["questions"][0]["label"] == _label("What would you like to talk about?")

    # A booking's consultation type gets its own survey (or none).
    type_id = str(uuid.uuid4())
    assert (await shop.get("/api/v1/intake-survey", consultation_type_id=type_id)) == {"survey": None}
    await live.http.put(
        f"/api/v1/survey-assignments/{type_id}", json={"survey_id": survey["id"]}, headers=headers
    )
    typed = await shop.get("/api/v1/intake-survey", consultation_type_id=type_id)
    assert typed["survey"]["id"] == survey["id"]
    listing = await (await live.http.get("/api/v1/survey-assignments", headers=headers)).json()
    assert {row["target"] for row in listing} == {"instant", type_id}

    # Unassign: shown nowhere there.
    await live.http.put("/api/v1/survey-assignments/instant", json={"survey_id": None}, headers=headers)
    assert (await shop.get("/api/v1/intake-survey")) == {"survey": None}
    bad = await live.http.put(
        "/api/v1/survey-assignments/not-a-target", json={"survey_id": None}, headers=headers
    )
    assert bad.status == 422


async def test_only_admins_change_surveys_supervisors_read(live: Any, make_staff: Any) -> None:
    anonymous = await live.http.post("/api/v1/surveys", json=skin_survey())
    assert anonymous.status == 401
    advisor = await make_staff(Role.ADVISOR)
    headers = await login(live.http, advisor)
    assert (await live.http.post("/api/v1/surveys", json=skin_survey(), headers=headers)).status == 403
    assert (await live.http.get("/api/v1/surveys", headers=headers)).status == 403
    supervisor = await make_staff(Role.SUPERVISOR)
    await live.http.post("/api/v1/auth/logout", headers=headers)
    headers = await login(live.http, supervisor)
    assert (await live.http.get("/api/v1/surveys", headers=headers)).status == 200
    assert (await live.http.post("/api/v1/surveys", json=skin_survey(), headers=headers)).status == 403
    put = await live.http.put("/api/v1/survey-assignments/instant", json={"survey_id": None}, headers=headers)
    assert put.status == 403


async def test_bad_definitions_get_a_clear_error(live: Any, make_staff: Any) -> None:
    headers = await _admin_headers(live, make_staff)
    body = skin_survey()
    body["questions"][0]["choices"] = body["questions"][0]["choices"][:1]
    response = await live.http.post("/api/v1/surveys", json=body, headers=headers)
    assert response.status == 422
    error = (await response.json())["error"]
    assert "at least 2 choices" in error["message"]
    # A choice may only route to a team that exists.
    response = await live.http.post("/api/v1/surveys", json=skin_survey(uuid.uuid4()), headers=headers)
    assert response.status == 422
    assert "no such team" in (await response.json())["error"]["message"]


async def test_answers_are_checked_field_by_field(live: Any, shop: Shop, make_staff: Any) -> None:
    headers = await _admin_headers(live, make_staff)
    survey = await _create_and_assign(live, headers, skin_survey())
    visitor = await shop.visitor()
    no_token = await shop.http.post(
        "/api/v1/intake-responses", json={"survey_id": survey["id"], "version": 1, "answers": GOOD}
    )
    assert no_token.status == 401
    response = await _answer(shop, visitor["token"], survey, {"topic": "perfume", "age": 9, "extra": "x"})
    assert response.status == 422
    error = (await response.json())["error"]
    fields = {d["field"]: d["code"] for d in error["details"]}
    assert fields == {
        "answers.topic": "unknown_choice",
        "answers.age": "out_of_range",
        "answers.consent": "consent_required",
        "answers.extra": "unknown_question",
    }
    assert error["message"].startswith("field 'answers.")
    missing_version = await _answer(shop, visitor["token"], survey, GOOD, version=7)
    assert missing_version.status == 404
    assert (await missing_version.json())["error"]["code"] == "survey_version_not_found"
    # Nothing was kept from the refused answers.
    ok = await _answer(shop, visitor["token"], survey, GOOD)
    assert ok.status == 201
    body = await ok.json()
    assert body["routing"] == {"skills": ["skincare"], "team_ids": [], "language": None}


async def test_answer_routes_the_call_to_the_matching_advisor_first(
    live: Any, shop: Shop, make_staff: Any, db: Database
) -> None:
    headers = await _admin_headers(live, make_staff)
    survey = await _create_and_assign(live, headers, skin_survey())
    generalist = await make_staff(Role.ADVISOR, skills=["styling"], languages=["ja"])
    expert = await make_staff(Role.ADVISOR, skills=["skincare"], languages=["ja"])
    generalist_console = await _online(live, generalist)
    expert_console = await _online(live, expert)
    # The generalist has waited far longer: without the answer they would be offered first.
    async with db.transaction() as session:
        await session.execute(
            update(AdvisorPresence)
            .where(AdvisorPresence.staff_id == generalist.id)
            .values(idle_since=utcnow() - timedelta(hours=1))
        )
    visitor = await shop.visitor()
    answered = await (await _answer(shop, visitor["token"], survey, GOOD)).json()
    shopper = await live.shopper(visitor["token"])
    joined = await shopper.ok("queue.join", {"kind": "video", "survey_response_id": answered["response_id"]})
    assert joined["skills"] == ["skincare"]
    offer = await expert_console.wait_for("offer.new")
    assert offer["id"] == joined["id"]
    assert not generalist_console.received("offer.new")
    # The advisor reads the answers in the offer, before accepting, in both languages.
    intake = offer["intake"]
    assert intake["version"] == 1
    assert [(a["question_id"], a["shown"]["en"]) for a in intake["answers"]] == [
        ("topic", "Skin care"),
        ("concern", "Dry skin in winter"),
        ("age", "4 / 5"),
        ("consent", "Agreed"),
    ]
    accepted = await expert_console.ok("offer.accept", {"consultation_id": joined["id"]})
    # … and during the call (after a reload, consultation.current carries them too).
    assert accepted["intake"]["response_id"] == answered["response_id"]
    current = await expert_console.ok("consultation.current")
    assert current[0]["intake"]["answers"][0]["shown"]["ja"] == "Skin care(ja)"
    async with db.read() as session:
        response = await session.get(SurveyResponse, uuid.UUID(answered["response_id"]))
        assert response is not None
        assert str(response.consultation_id) == joined["id"]


async def test_answer_routes_to_the_team_it_names(
    live: Any, shop: Shop, make_staff: Any, db: Database
) -> None:
    async with db.transaction() as session:
        team = Team(name="Make-up artists")
        session.add(team)
    headers = await _admin_headers(live, make_staff)
    survey = await _create_and_assign(live, headers, skin_survey(team.id))
    outsider = await make_staff(Role.ADVISOR, skills=["makeup"])
    member = await make_staff(Role.ADVISOR, skills=["makeup"], team_id=team.id)
    outsider_console = await _online(live, outsider)
    member_console = await _online(live, member)
    async with db.transaction() as session:
        await session.execute(
            update(AdvisorPresence)
            .where(AdvisorPresence.staff_id == outsider.id)
            .values(idle_since=utcnow() - timedelta(hours=1))
        )
    visitor = await shop.visitor()
    answered = await (await _answer(shop, visitor["token"], survey, {**GOOD, "topic": "makeup"})).json()
    assert answered["routing"]["team_ids"] == [str(team.id)]
    shopper = await live.shopper(visitor["token"])
    joined = await shopper.ok("queue.join", {"kind": "chat", "survey_response_id": answered["response_id"]})
    assert (await member_console.wait_for("offer.new"))["id"] == joined["id"]
    assert not outsider_console.received("offer.new")


async def test_someone_elses_answers_cannot_be_used(live: Any, shop: Shop, make_staff: Any) -> None:
    headers = await _admin_headers(live, make_staff)
    survey = await _create_and_assign(live, headers, skin_survey())
    owner = await shop.visitor()
    answered = await (await _answer(shop, owner["token"], survey, GOOD)).json()
    thief = await live.shopper((await shop.visitor())["token"])
    ack = await thief.call("queue.join", {"kind": "video", "survey_response_id": answered["response_id"]})
    assert ack["ok"] is False
    assert ack["error"]["code"] == "survey_response_not_found"
    missing = await thief.call("queue.join", {"kind": "video", "survey_response_id": str(uuid.uuid4())})
    assert missing["error"]["code"] == "survey_response_not_found"
    # Answers lead to one consultation: used again after leaving, they are refused, cleanly.
    mine = await live.shopper(owner["token"])
    first = await mine.ok("queue.join", {"kind": "video", "survey_response_id": answered["response_id"]})
    await mine.ok("queue.leave", {"consultation_id": first["id"]})
    again = await mine.call("queue.join", {"kind": "video", "survey_response_id": answered["response_id"]})
    assert again["error"]["code"] == "survey_response_used"
    assert (await mine.ok("consultation.current")) == []


async def test_answers_land_on_the_shoppers_timeline(
    live: Any, shop: Shop, make_staff: Any, db: Database
) -> None:
    headers = await _admin_headers(live, make_staff)
    survey = await _create_and_assign(live, headers, skin_survey())
    visitor = await shop.visitor()
    answered = await (await _answer(shop, visitor["token"], survey, GOOD)).json()
    async with db.read() as session:
        events = (
            await session.scalars(
                select(TimelineEvent).where(
                    TimelineEvent.shopper_id == uuid.UUID(visitor["shopper_id"]),
                    TimelineEvent.kind == TimelineKind.SURVEY,
                )
            )
        ).all()
    assert len(events) == 1
    event = events[0]
    assert event.ref_id == answered["response_id"]
    assert event.summary == "Answered the survey “Before your call” (version 1)"
    assert event.data["answers"][0]["shown"]["en"] == "Skin care"


async def test_editing_a_survey_leaves_earlier_answers_as_they_were(
    live: Any, shop: Shop, make_staff: Any, db: Database
) -> None:
    headers = await _admin_headers(live, make_staff)
    survey = await _create_and_assign(live, headers, skin_survey())
    first = await shop.visitor()
    old = await (await _answer(shop, first["token"], survey, GOOD)).json()

    # Version 2: the topic question is renamed, its choices changed, "age" removed, a new
    # required question added.
    edited = skin_survey()
    edited["questions"][0]["label"] = _label("Your topic")
    edited["questions"][0]["choices"] = [
        {"value": "fragrance", "label": _label("Fragrance")},
        {"value": "nails", "label": _label("Nails")},
    ]
    del edited["questions"][2]
    edited["questions"].append(
        {"id": "email", "type": "short_text", "label": _label("E-mail"), "required": True}
    )
    del edited["name"]
    saved = await live.http.put(
        f"/api/v1/surveys/{survey['id']}", json={**edited, "base_version": 1}, headers=headers
    )
    assert saved.status == 200, await saved.text()
    assert (await saved.json())["current_version"] == 2
    stale = await live.http.put(
        f"/api/v1/surveys/{survey['id']}", json={**edited, "base_version": 1}, headers=headers
    )
    assert stale.status == 409
    assert (await stale.json())["error"]["code"] == "survey_changed"

    # Shoppers now get version 2; version 1 is still there, unchanged.
    assert (await shop.get("/api/v1/intake-survey"))["survey"]["version"] == 2
    v1 = await (await live.http.get(f"/api/v1/surveys/{survey['id']}/versions/1", headers=headers)).json()
    assert v1["questions"][0]["label"] == _label("What would you like to talk about?")

    # The old response reads exactly as answered, with version 1's questions.
    responses = await (
        await live.http.get(f"/api/v1/surveys/{survey['id']}/responses", headers=headers)
    ).json()
    by_id = {r["response_id"]: r for r in responses}
    assert by_id[old["response_id"]]["version"] == 1
    assert [
        (a["question_id"], a["label"]["en"], a["shown"]["en"]) for a in by_id[old["response_id"]]["answers"]
    ] == [
        ("topic", "What would you like to talk about?", "Skin care"),
        ("concern", "Anything we should know?", "Dry skin in winter"),
        ("age", "How urgent?", "4 / 5"),
        ("consent", "I agree to the privacy policy", "Agreed"),
    ]
    # A shopper who opened the form before the edit can still send version 1's answers …
    late = await shop.visitor()
    assert (await _answer(shop, late["token"], survey, GOOD, version=1)).status == 201
    # … while version 2 checks against its own questions.
    v2 = await _answer(shop, late["token"], survey, GOOD, version=2)
    assert v2.status == 422
    codes = {d["field"]: d["code"] for d in (await v2.json())["error"]["details"]}
    assert codes == {
        "answers.topic": "unknown_choice",
        "answers.age": "unknown_question",
        "answers.email": "required",
    }
    # The stored answers themselves were never touched.
    async with db.read() as session:
        row = await session.get(SurveyResponse, uuid.UUID(old["response_id"]))
        assert row is not None
        assert row.answers == GOOD
        assert row.version == 1
        view = await service.get_version(session, uuid.UUID(survey["id"]), 1)
        assert [q.id for q in view.questions] == ["topic", "concern", "age", "consent"]


async def test_archived_survey_is_shown_nowhere_and_takes_no_answers(
    live: Any, shop: Shop, make_staff: Any
) -> None:
    headers = await _admin_headers(live, make_staff)
    survey = await _create_and_assign(live, headers, skin_survey())
    archived = await live.http.post(
        f"/api/v1/surveys/{survey['id']}/archive", json={"archived": True}, headers=headers
    )
    assert (await archived.json())["assigned_to"] == []
    assert (await shop.get("/api/v1/intake-survey")) == {"survey": None}
    visitor = await shop.visitor()
    refused = await _answer(shop, visitor["token"], survey, GOOD)
    assert refused.status == 409
    again = await live.http.put(
        "/api/v1/survey-assignments/instant", json={"survey_id": survey["id"]}, headers=headers
    )
    assert again.status == 409


async def test_demo_survey_is_seeded_once_and_shown_by_the_demo(shop: Shop, db: Database) -> None:
    from livedesk.demo.seed import seed_demo
    from livedesk.demo.surveys import DEMO_SURVEY_ID, show_demo_survey

    await seed_demo(db)
    # Seeding alone shows nothing: test servers that seed the demo keep "talk now" direct.
    assert (await shop.get("/api/v1/intake-survey")) == {"survey": None}
    await show_demo_survey(db)
    await seed_demo(db)
    await show_demo_survey(db)
    shown = (await shop.get("/api/v1/intake-survey"))["survey"]
    assert shown["id"] == str(DEMO_SURVEY_ID)
    assert shown["version"] == 1
    # Where answers route is not the shopper's business: left out of their copy.
    assert all(
        c["routing"] == {"skill": None, "team_id": None, "language": None}
        for c in shown["questions"][0]["choices"]
    )
    async with db.read() as session:
        fashion = await session.scalar(select(Team.id).where(Team.name == "Fashion"))
        assert await session.scalar(select(func.count()).select_from(SurveyVersion)) == 1
        stored = await service.get_version(session, DEMO_SURVEY_ID, 1)
    styling = next(c for c in stored.questions[0].choices if c.value == "styling")
    assert (styling.routing.skill, styling.routing.team_id) == ("styling", fashion)


async def test_answers_given_when_booking_reach_the_booked_consultation(
    live: Any, shop: Shop, make_staff: Any, db: Database
) -> None:
    headers = await _admin_headers(live, make_staff)
    survey = await _create_and_assign(live, headers, skin_survey())
    visitor = await shop.visitor()
    shopper_id = uuid.UUID(visitor["shopper_id"])
    # The shopper's own booking: answers may name no other (test_product_cards.py).
    booking_id = await booking_of(db, shopper_id, (await make_staff(Role.ADVISOR)).id)
    async with db.transaction() as session:
        submitted = await service.submit_intake(
            session,
            survey_id=uuid.UUID(survey["id"]),
            version=1,
            answers=GOOD,
            shopper_id=shopper_id,
            booking_id=booking_id,
        )
    shopper = await live.shopper(visitor["token"])
    joined = await shopper.ok("queue.join", {"kind": "video"})
    async with db.transaction() as session:
        c = await session.get(Consultation, uuid.UUID(joined["id"]))
        assert c is not None
        await service.attach_response(session, submitted.response_id, c)
        assert c.extra["intake"]["answers"][0]["shown"]["en"] == "Skin care"
        stranger = Consultation(
            id=uuid.uuid4(), shopper_id=(await _other_shopper(session)), kind=c.kind, status=c.status
        )
        session.add(stranger)
        await session.flush()
        with pytest.raises(NotFound):
            await service.attach_response(session, submitted.response_id, stranger)
    async with db.read() as session:
        row = await session.get(SurveyResponse, submitted.response_id)
        assert row is not None
        assert (row.booking_id, str(row.consultation_id)) == (booking_id, joined["id"])


async def booking_of(db: Database, shopper_id: uuid.UUID, advisor_id: uuid.UUID, days: int = 3) -> uuid.UUID:
    """A confirmed booking of ``shopper_id``, ``days`` ahead (written directly: the tests using
    it are about what a booking id lets a shopper do, not about booking)."""
    start = utcnow().replace(microsecond=0) + timedelta(days=days)
    async with db.transaction() as session:
        ctype = ConsultationType(id=uuid.uuid4(), name="Skin care", duration_minutes=30)
        session.add(ctype)
        await session.flush()
        booking = Booking(
            id=uuid.uuid4(),
            consultation_type_id=ctype.id,
            advisor_id=advisor_id,
            shopper_id=shopper_id,
            status=BookingStatus.CONFIRMED,
            starts_at=start,
            ends_at=start + timedelta(minutes=30),
            block_start=start,
            block_end=start + timedelta(minutes=30),
            shopper_timezone="Asia/Tokyo",
            contact_email="booked@example.jp",
            extra={},
        )
        session.add(booking)
    return booking.id


async def _other_shopper(session: Any) -> uuid.UUID:
    other = Shopper(id=uuid.uuid4(), display_name="Other")
    session.add(other)
    await session.flush()
    return other.id
