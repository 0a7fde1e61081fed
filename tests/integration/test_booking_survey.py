"""A booking with the survey assigned to its consultation type: the answers are checked by the
surveys service, kept with the booking (survey_response_id), and wrong answers are a 422
naming the question — with nothing of the booking kept."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from livedesk.demo.surveys import demo_survey
from livedesk.kit.db import Database
from livedesk.models import Booking, Role, SurveyResponse
from livedesk.settings import Settings
from livedesk.surveys import service as surveys
from tests.integration.test_booking_api import booking_body, make_type, next_slot, set_hours

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"booking_rate_limit": "1000/minute"})


async def test_booking_keeps_its_survey_answers(client: Client, make_staff: Any, db: Database) -> None:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR, timezone="Asia/Tokyo")
    ctype = await make_type(client, admin)
    await set_hours(client, advisor)
    async with db.transaction() as session:
        created = await surveys.create_survey(session, demo_survey(None), actor_id=None)
        await surveys.set_assignment(session, ctype["id"], created.id)
    shown = await (await client.get(f"/api/v1/booking/types/{ctype['id']}/survey")).json()
    survey = shown["survey"]
    assert survey["id"] == str(created.id)
    required = [q["id"] for q in survey["questions"] if q.get("required")]
    assert "topic" in required

    # A required question left out: 422 naming it; no booking, no response.
    wrong = booking_body(ctype["id"], next_slot(), advisor.id)
    wrong["survey"] = {"survey_id": survey["id"], "version": survey["version"], "answers": {}}
    refused = await client.post("/api/v1/bookings", json=wrong)
    assert refused.status == 422
    error = (await refused.json())["error"]
    assert any(d.get("field") == "answers.topic" for d in error["details"])
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Booking)) == 0

    answers: dict[str, Any] = {"topic": "skincare"}
    for question in survey["questions"]:
        if question["type"] == "consent" and question.get("required"):
            answers[question["id"]] = True
    body = booking_body(ctype["id"], next_slot(), advisor.id)
    body["survey"] = {"survey_id": survey["id"], "version": survey["version"], "answers": answers}
    response = await client.post("/api/v1/bookings", json=body)
    assert response.status == 201, await response.text()
    booking_id = uuid.UUID((await response.json())["booking"]["id"])
    async with db.read() as session:
        booking = await session.get(Booking, booking_id)
        assert booking is not None
        assert booking.survey_response_id is not None
        kept = await session.get(SurveyResponse, booking.survey_response_id)
        assert kept is not None
        assert kept.booking_id == booking_id
        assert kept.shopper_id == booking.shopper_id
