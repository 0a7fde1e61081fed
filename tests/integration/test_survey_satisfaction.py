"""The post-call survey through the real app: after hang-up on the call page, once per
consultation, only by its shopper; by a signed mail link for booked consultations (sent
exactly once, over real SMTP); on the timeline; and in the supervisor's figures."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select

from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import (
    Consultation,
    Role,
    SatisfactionInvitation,
    Shopper,
    TimelineEvent,
    TimelineKind,
)
from livedesk.settings import Settings
from livedesk.surveys import mail, service
from tests.conftest import SmtpInbox, login, wait_until


@pytest.fixture
def settings(settings: Settings, smtp_inbox: SmtpInbox) -> Settings:
    return settings.model_copy(
        update={
            "presence_grace_seconds": 0.0,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_inbox.port,
            "public_url": "https://desk.example",
        }
    )


@pytest.fixture
async def shop(live: Any) -> AsyncIterator[aiohttp.ClientSession]:
    """The shopper's own HTTP client (no staff cookie rides along)."""
    async with aiohttp.ClientSession(base_url=live.url) as http:
        yield http


async def _visitor(shop: aiohttp.ClientSession) -> dict[str, Any]:
    response = await shop.post("/api/v1/visitors", json={})
    assert response.status == 201
    body: dict[str, Any] = await response.json()
    return body


async def _advisor(live: Any, make_staff: Any) -> Any:
    advisor = await make_staff(Role.ADVISOR, display_name="Sakura")
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    return console


async def _consultation(live: Any, shop: aiohttp.ClientSession, console: Any) -> tuple[Any, dict[str, Any]]:
    """A shopper in an accepted video consultation with the console's advisor."""
    seen = len(console.received("offer.new"))
    visitor = await _visitor(shop)
    shopper = await live.shopper(visitor["token"])
    joined = await shopper.ok("queue.join", {"kind": "video"})
    await wait_until(lambda: _offers(console, seen))
    await console.ok("offer.accept", {"consultation_id": joined["id"]})
    visitor["consultation_id"] = joined["id"]
    return shopper, visitor


async def _offers(console: Any, seen: int) -> bool:
    return len(console.received("offer.new")) > seen


async def _rate(
    shop: aiohttp.ClientSession, token: str, consultation_id: str, **body: Any
) -> aiohttp.ClientResponse:
    return await shop.post(
        f"/api/v1/consultations/{consultation_id}/satisfaction",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_after_hang_up_the_shopper_rates_once(
    live: Any, shop: aiohttp.ClientSession, make_staff: Any, db: Database
) -> None:
    shopper, visitor = await _consultation(live, shop, await _advisor(live, make_staff))
    cid, token = visitor["consultation_id"], visitor["token"]
    early = await _rate(shop, token, cid, csat=5)
    assert early.status == 409
    assert (await early.json())["error"]["code"] == "not_ended"
    await shopper.ok("consultation.end", {"consultation_id": cid})

    bad = await _rate(shop, token, cid, csat=6, nps=11, comment="x")
    assert bad.status == 422
    fields = {d["field"] for d in (await bad.json())["error"]["details"]}
    assert fields == {"csat", "nps"}
    assert (await _rate(shop, "", cid, csat=4)).status == 401

    stranger = await _visitor(shop)
    denied = await _rate(shop, stranger["token"], cid, csat=1)
    assert denied.status == 403

    mine = f"/api/v1/consultations/{cid}/satisfaction"
    bearer = {"Authorization": f"Bearer {token}"}
    assert await (await shop.get(mine, headers=bearer)).json() == {"satisfaction": None}
    other = await shop.get(mine, headers={"Authorization": f"Bearer {stranger['token']}"})
    assert other.status == 403
    assert (await shop.get(mine)).status == 401
    rated = await _rate(shop, token, cid, csat=4, nps=9, comment="Very kind")
    assert rated.status == 201, await rated.text()
    assert (await (await shop.get(mine, headers=bearer)).json())["satisfaction"]["csat"] == 4
    assert (await rated.json())["source"] == "call"
    again = await _rate(shop, token, cid, csat=1)
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "already_answered"

    async with db.read() as session:
        events = (
            await session.scalars(
                select(TimelineEvent).where(
                    TimelineEvent.shopper_id == uuid.UUID(visitor["shopper_id"]),
                    TimelineEvent.kind == TimelineKind.SURVEY,
                )
            )
        ).all()
        assert [(e.summary, e.data["comment"]) for e in events] == [
            ("Satisfaction 4/5, would recommend 9/10", "Very kind")
        ]
        assert str(events[0].consultation_id) == cid


async def test_figures_for_the_supervisor(
    live: Any, shop: aiohttp.ClientSession, make_staff: Any, db: Database
) -> None:
    start = utcnow()
    console = await _advisor(live, make_staff)
    for csat, nps in ((5, 10), (3, None)):
        shopper, visitor = await _consultation(live, shop, console)
        await shopper.ok("consultation.end", {"consultation_id": visitor["consultation_id"]})
        await console.ok("consultation.close", {"consultation_id": visitor["consultation_id"]})
        body: dict[str, Any] = {"csat": csat} if nps is None else {"csat": csat, "nps": nps}
        assert (await _rate(shop, visitor["token"], visitor["consultation_id"], **body)).status == 201
    end = utcnow() + timedelta(seconds=1)
    async with db.read() as session:
        figures = await service.satisfaction_between(session, start, end)
        assert (figures.responses, figures.average_csat, figures.average_nps) == (2, 4.0, 10.0)
        before = await service.satisfaction_between(session, start - timedelta(days=1), start)
        assert (before.responses, before.average_csat, before.average_nps) == (0, None, None)

    params = {"start": start.isoformat(), "end": end.isoformat()}
    advisor = await make_staff(Role.ADVISOR)
    headers = await login(live.http, advisor)
    assert (await live.http.get("/api/v1/satisfaction/figures", params=params)).status == 403
    # Another advisor's consultation: not theirs to read.
    one = f"/api/v1/consultations/{visitor['consultation_id']}/satisfaction"
    assert (await live.http.get(one)).status == 403
    await live.http.post("/api/v1/auth/logout", headers=headers)
    await login(live.http, await make_staff(Role.SUPERVISOR))
    response = await live.http.get("/api/v1/satisfaction/figures", params=params)
    assert await response.json() == {"responses": 2, "average_csat": 4.0, "average_nps": 10.0}
    read = await (await live.http.get(one)).json()
    assert (read["satisfaction"]["csat"], read["satisfaction"]["nps"]) == (3, None)
    none = await live.http.get(f"/api/v1/consultations/{uuid.uuid4()}/satisfaction")
    assert await none.json() == {"satisfaction": None}
    backwards = await live.http.get(
        "/api/v1/satisfaction/figures", params={"start": params["end"], "end": params["start"]}
    )
    assert backwards.status == 422


async def _book(db: Database, consultation_id: str, shopper_id: str, email: str | None) -> None:
    """What booking does when a booked consultation starts: its id in extra; the shopper's e-mail."""
    async with db.transaction() as session:
        c = await session.get(Consultation, uuid.UUID(consultation_id))
        assert c is not None
        c.extra = {**c.extra, "booking_id": str(uuid.uuid4())}
        shopper = await session.get(Shopper, uuid.UUID(shopper_id))
        assert shopper is not None
        shopper.email = email
        shopper.locale = "en"
        shopper.display_name = "Hanako"


async def test_booked_consultation_gets_one_mail_with_a_working_link(
    live: Any,
    shop: aiohttp.ClientSession,
    make_staff: Any,
    db: Database,
    smtp_inbox: SmtpInbox,
    app: web.Application,
) -> None:
    console = await _advisor(live, make_staff)
    shopper, visitor = await _consultation(live, shop, console)
    cid = visitor["consultation_id"]
    await _book(db, cid, visitor["shopper_id"], "hanako@example.test")
    await shopper.ok("consultation.end", {"consultation_id": cid})
    await console.ok("consultation.close", {"consultation_id": cid, "notes": "done"})

    await wait_until(lambda: _received(smtp_inbox, 1))
    (message,) = smtp_inbox.parsed()
    assert message["To"] == "hanako@example.test"
    assert message["Subject"] == "Thank you for your consultation"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Dear Hanako" in text
    assert "Sakura" in text
    found = re.search(r"https://desk\.example/surveys/csat#t=(\S+)", text)
    assert found is not None
    token = found.group(1)

    # Closing again is refused, and neither the sweep nor a second send mails twice.
    assert (await console.call("consultation.close", {"consultation_id": cid}))["ok"] is False
    assert await mail.send_invitation(app, uuid.UUID(cid)) is False
    assert await mail.retry_unsent(app) == 0
    async with db.read() as session:
        invitation = await session.get(SatisfactionInvitation, uuid.UUID(cid))
        assert invitation is not None
        assert invitation.sent_at is not None
        assert invitation.attempts == 1
    assert len(smtp_inbox.messages) == 1

    info = await shop.post("/api/v1/satisfaction/link/info", json={"token": token})
    assert info.status == 200
    assert (await info.json())["advisor_name"] == "Sakura"
    assert (await info.json())["answered"] is False
    forged = await shop.post("/api/v1/satisfaction/link", json={"token": token + "x", "csat": 5})
    assert forged.status == 401
    rated = await shop.post(
        "/api/v1/satisfaction/link", json={"token": token, "csat": 5, "comment": "Lovely"}
    )
    assert rated.status == 201, await rated.text()
    assert (await rated.json())["source"] == "mail"
    twice = await shop.post("/api/v1/satisfaction/link", json={"token": token, "csat": 1})
    assert twice.status == 409
    # The call page cannot add a second answer either.
    assert (await _rate(shop, visitor["token"], cid, csat=2)).status == 409


async def test_no_mail_without_a_booking_or_an_address(
    live: Any, shop: aiohttp.ClientSession, make_staff: Any, db: Database, smtp_inbox: SmtpInbox
) -> None:
    console = await _advisor(live, make_staff)
    shopper, plain = await _consultation(live, shop, console)
    await shopper.ok("consultation.end", {"consultation_id": plain["consultation_id"]})
    await console.ok("consultation.close", {"consultation_id": plain["consultation_id"]})
    shopper2, booked = await _consultation(live, shop, console)
    await _book(db, booked["consultation_id"], booked["shopper_id"], None)
    await shopper2.ok("consultation.end", {"consultation_id": booked["consultation_id"]})
    await console.ok("consultation.close", {"consultation_id": booked["consultation_id"]})
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(SatisfactionInvitation)) == 0
    assert smtp_inbox.messages == []


async def _received(inbox: SmtpInbox, count: int) -> bool:
    return len(inbox.messages) >= count
