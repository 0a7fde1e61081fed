"""The supervisor board over Socket.IO and REST: a snapshot derived from the database, then
changes within 250 ms to every supervisor; alerts; one day's figures from stored rows; and
who may not watch."""

from __future__ import annotations

import asyncio
import statistics
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from livedesk.kit.db import Database
from livedesk.models import (
    Brand,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    PaymentProviderName,
    PaymentRequest,
    PaymentStatus,
    Role,
    Shopper,
    Team,
)
from livedesk.models.surveys import SatisfactionResponse
from livedesk.settings import Settings

S = ConsultationStatus
CHANGE_BUDGET_SECONDS = 0.25


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"alert_long_wait_seconds": 60, "alert_long_call_seconds": 300})


async def _timed(client: Any, event: str, predicate: Any, stamp: str) -> float:
    """Seconds from the change (the server's time of it, ``stamp`` in the payload) until
    ``client`` has the event matching ``predicate``."""
    data = await client.wait_for(event, predicate, within=5)
    return (datetime.now(UTC) - datetime.fromisoformat(data[stamp])).total_seconds()


async def test_snapshot_then_changes_within_250_ms(live: Any, make_staff: Any, db: Database) -> None:
    async with db.transaction() as session:
        team = Team(name="Skin care")
        session.add(team)
    advisor = await make_staff(Role.ADVISOR, display_name="Sakura", team_id=team.id)
    idle = await make_staff(Role.ADVISOR, display_name="Misaki")
    supervisor = await make_staff(Role.SUPERVISOR)
    admin = await make_staff(Role.ADMIN)
    boards = [await live.staff(supervisor), await live.staff(admin)]
    advisor_socket = await live.staff(advisor)
    for board in boards:
        await board.wait_for("presence.changed", lambda p: p["staff_id"] == str(advisor.id))

    snapshot = await boards[0].ok("board.snapshot")
    by_id = {a["staff_id"]: a for a in snapshot["advisors"]}
    assert by_id[str(advisor.id)]["status"] == "available"
    assert by_id[str(advisor.id)]["team_id"] == str(team.id)
    assert by_id[str(advisor.id)]["since"] is not None
    # Never signed in: offline, with no time in state.
    assert by_id[str(idle.id)]["status"] == "offline"
    assert by_id[str(idle.id)]["since"] is None
    # Supervisors and admins are not advisors on the board.
    assert str(supervisor.id) not in by_id
    assert str(admin.id) not in by_id
    assert snapshot["teams"] == [{"id": str(team.id), "name": "Skin care"}]
    assert snapshot["consultations"] == []
    assert snapshot["alerts"] == []
    assert snapshot["thresholds"] == {"long_wait_seconds": 60, "long_call_seconds": 300}
    assert snapshot["figures"]["offered"] == 0
    # No brand row: the UTC day, and the model's default currency.
    assert snapshot["timezone"] == "UTC"
    assert snapshot["currency"] == "JPY"

    # Changes reach both supervisors: presence back and forth, then a shopper in the queue.
    latencies: list[float] = []
    last = by_id[str(advisor.id)]["since"]
    for status in ("away", "available", "away", "available"):
        waits = [
            asyncio.create_task(
                _timed(
                    b,
                    "presence.changed",
                    lambda p, s=status, after=last: p["status"] == s and p["since"] > after,
                    "since",
                )
            )
            for b in boards
        ]
        last = (await advisor_socket.ok("presence.set", {"status": status}))["since"]
        latencies += await asyncio.gather(*waits)
    shopper = await live.shopper()
    waits = [
        asyncio.create_task(
            _timed(b, "consultation.updated", lambda c: c["status"] in ("queued", "offered"), "queued_at")
        )
        for b in boards
    ]
    joined = await shopper.ok("queue.join", {"kind": "video", "nominated_advisor_id": str(advisor.id)})
    latencies += await asyncio.gather(*waits)

    # The advisor answers: the call is on the board, and the advisor is busy.
    await advisor_socket.wait_for("offer.new")
    waits = [
        asyncio.create_task(_timed(b, "presence.changed", lambda p: p["status"] == "busy", "since"))
        for b in boards
    ]
    await advisor_socket.ok("offer.accept", {"consultation_id": joined["id"]})
    latencies += await asyncio.gather(*waits)
    # Every change reached both supervisors (within the 5 s wait), the typical one within
    # 250 ms: shared machines have noisy moments; bench/monitoring.py measures percentiles.
    assert len(latencies) == 12
    assert statistics.median(latencies) < CHANGE_BUDGET_SECONDS, latencies

    snapshot = await boards[1].ok("board.snapshot")
    [call] = snapshot["consultations"]
    assert (call["id"], call["status"], call["kind"]) == (joined["id"], "active", "video")
    assert call["advisor_id"] == str(advisor.id)
    assert call["accepted_at"] is not None
    assert call["nominated_advisor_id"] == str(advisor.id)
    # Nothing about the shopper but what a wall screen may show.
    assert "shopper_id" not in call
    assert {a["staff_id"]: a["status"] for a in snapshot["advisors"]}[str(advisor.id)] == "busy"
    assert snapshot["figures"]["offered"] == 1
    assert snapshot["figures"]["answered"] == 1

    # Hanging up and closing end the call on the board; today's figures count its handle time.
    await shopper.ok("consultation.end", {"consultation_id": joined["id"]})
    await advisor_socket.ok("consultation.close", {"consultation_id": joined["id"], "notes": ""})
    closed = await boards[0].wait_for("consultation.updated", lambda c: c["status"] == "closed")
    # Figures are shared between pages for a moment; naming the change gets ones that count it.
    figures = await boards[0].ok("board.figures", {"fresh_after": closed["closed_at"]})
    assert figures["answered"] == 1
    assert figures["average_handle_seconds"] is not None
    assert (await boards[0].ok("board.snapshot"))["consultations"] == []
    # The team filter: the answering advisor's team has it; another team has nothing.
    assert (await boards[0].ok("board.figures", {"team_id": str(team.id)}))["answered"] == 1
    assert (await boards[0].ok("board.figures", {"team_id": str(uuid.uuid4())}))["offered"] == 0


async def _shopper(db: Database) -> uuid.UUID:
    async with db.transaction() as session:
        shopper = Shopper(display_name="Test shopper")
        session.add(shopper)
    return shopper.id


async def _consultation(db: Database, shopper_id: uuid.UUID, **fields: Any) -> uuid.UUID:
    queued = fields.pop("queued_at")
    c = Consultation(
        shopper_id=shopper_id,
        kind=fields.pop("kind", ConsultationKind.VIDEO),
        requested_at=queued,
        queued_at=queued,
        skills=[],
        passed_over=[],
        **fields,
    )
    async with db.transaction() as session:
        session.add(c)
    return c.id


async def test_alerts_for_long_waits_and_long_calls(live: Any, make_staff: Any, db: Database) -> None:
    advisor = await make_staff(Role.ADVISOR)
    supervisor = await make_staff(Role.SUPERVISOR)
    shopper_id = await _shopper(db)
    now = datetime.now(UTC)
    waiting = await _consultation(db, shopper_id, status=S.QUEUED, queued_at=now - timedelta(seconds=90))
    await _consultation(db, shopper_id, status=S.QUEUED, queued_at=now - timedelta(seconds=10))
    call = await _consultation(
        db,
        shopper_id,
        status=S.ACTIVE,
        advisor_id=advisor.id,
        queued_at=now - timedelta(seconds=700),
        accepted_at=now - timedelta(seconds=650),
    )
    board = await live.staff(supervisor)
    snapshot = await board.ok("board.snapshot")
    assert len(snapshot["consultations"]) == 3
    kinds = [(a["kind"], a["consultation_id"]) for a in snapshot["alerts"]]
    assert kinds == [("long_call", str(call)), ("long_wait", str(waiting))]
    assert snapshot["alerts"][0]["advisor_id"] == str(advisor.id)
    assert 650 <= snapshot["alerts"][0]["seconds"] < 700


async def test_figures_of_a_fixed_day_from_stored_rows(client: Any, make_staff: Any, db: Database) -> None:
    from tests.conftest import login

    async with db.transaction() as session:
        session.add(Brand(slug="hanami", name="Hanami", timezone="Asia/Tokyo"))
    advisor = await make_staff(Role.ADVISOR)
    shopper_id = await _shopper(db)
    # 2026-03-10 in Tokyo is 2026-03-09 15:00 .. 2026-03-10 15:00 UTC.
    start = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
    answered = {"status": S.CLOSED, "advisor_id": advisor.id}
    first = await _consultation(
        db,
        shopper_id,
        queued_at=start,
        accepted_at=start + timedelta(seconds=40),
        ended_at=start + timedelta(seconds=400),
        closed_at=start + timedelta(seconds=640),
        **answered,
    )
    last_second = start + timedelta(hours=24, seconds=-1)
    await _consultation(
        db,
        shopper_id,
        status=S.ABANDONED,
        queued_at=last_second - timedelta(seconds=100),
        closed_at=last_second,
    )
    third = await _consultation(
        db,
        shopper_id,
        queued_at=last_second - timedelta(seconds=300),
        accepted_at=last_second - timedelta(seconds=280),
        **answered,
        closed_at=last_second - timedelta(seconds=100),
    )
    # The local day before and the one after: not counted.
    await _consultation(db, shopper_id, status=S.MISSED, queued_at=start - timedelta(seconds=1))
    await _consultation(db, shopper_id, status=S.MISSED, queued_at=start + timedelta(hours=24))

    # Paid in the call (12,800 yen, 2,000 refunded), and one paid the day after: not counted.
    for paid_at, total in ((start + timedelta(seconds=300), 12_800), (start + timedelta(hours=24), 9_999)):
        async with db.transaction() as session:
            session.add(
                PaymentRequest(
                    consultation_id=first,
                    shopper_id=shopper_id,
                    advisor_id=advisor.id,
                    client_key=uuid.uuid4().hex,
                    status=PaymentStatus.PARTIALLY_REFUNDED,
                    provider=PaymentProviderName.SANDBOX,
                    currency="JPY",
                    total_minor=total,
                    refunded_minor=2_000,
                    paid_at=paid_at,
                )
            )

    # Post-call answers: two that day (5 with NPS 9; 4 without NPS), one the day after.
    answers = (
        (first, 5, 9, start + timedelta(seconds=700)),
        (third, 4, None, last_second - timedelta(seconds=30)),
    )
    async with db.transaction() as session:
        for consultation_id, csat, nps, at in answers:
            session.add(
                SatisfactionResponse(
                    consultation_id=consultation_id,
                    shopper_id=shopper_id,
                    advisor_id=advisor.id,
                    csat=csat,
                    nps=nps,
                    source="call",
                    submitted_at=at,
                )
            )
    next_day = await _consultation(db, shopper_id, status=S.MISSED, queued_at=start + timedelta(hours=25))
    async with db.transaction() as session:
        session.add(
            SatisfactionResponse(
                consultation_id=next_day,
                shopper_id=shopper_id,
                csat=1,
                nps=0,
                source="mail",
                submitted_at=start + timedelta(hours=25),
            )
        )

    supervisor = await make_staff(Role.SUPERVISOR)
    await login(client, supervisor)
    response = await client.get("/api/v1/supervision/figures", params={"day": "2026-03-10"})
    assert response.status == 200, await response.text()
    f = await response.json()
    assert f["timezone"] == "Asia/Tokyo"
    assert f["day"] == "2026-03-10"
    assert (f["offered"], f["answered"], f["abandoned"], f["missed"], f["waiting"]) == (3, 2, 1, 0, 0)
    assert f["average_wait_seconds"] == 30.0  # (40 + 20) / 2
    assert f["longest_wait_seconds"] == 100.0  # the one who left
    assert f["average_handle_seconds"] == 390.0  # (600 + 180) / 2
    assert f["revenue"] == [{"currency": "JPY", "amount_minor": 10_800, "paid_consultations": 1}]
    assert f["paid_consultations"] == 1
    assert f["conversion"] == 0.5  # one paid of two answered
    assert f["satisfaction"] == {"responses": 2, "average_csat": 4.5, "average_nps": 9.0}
    hours = {h["hour"]: h for h in f["hours"]}
    assert hours[0]["offered"] == 1
    assert hours[23]["offered"] == 2
    assert hours[23]["abandoned"] == 1

    bad = await client.get("/api/v1/supervision/figures", params={"day": "10/03/2026"})
    assert bad.status == 422
    assert (await bad.json())["error"]["code"] == "validation_failed"


async def test_advisors_and_shoppers_cannot_watch(live: Any, client: Any, make_staff: Any) -> None:
    from tests.conftest import login

    advisor = await make_staff(Role.ADVISOR)
    advisor_socket = await live.staff(advisor)
    for event in ("board.snapshot", "board.figures"):
        ack = await advisor_socket.call(event, {})
        assert ack["ok"] is False
        assert ack["error"]["code"] == "forbidden"
    # The board is no shopper event at all.
    shopper = await live.shopper()
    ack = await shopper.call("board.snapshot", {})
    assert ack["ok"] is False
    assert ack["error"]["code"] == "unknown_event"
    # An advisor never hears board changes either: supervisors' room only.
    other = await live.shopper()
    await other.ok("queue.join", {"kind": "chat"})
    await advisor_socket.wait_for("offer.new")
    assert not advisor_socket.received("consultation.updated")

    anonymous = await client.get("/api/v1/supervision/board")
    assert anonymous.status == 401
    await login(client, advisor)
    for path in ("/api/v1/supervision/board", "/api/v1/supervision/figures"):
        response = await client.get(path)
        assert response.status == 403, path
        assert (await response.json())["error"]["code"] == "forbidden"


async def test_bad_board_payloads_get_clear_errors(live: Any, make_staff: Any) -> None:
    supervisor = await make_staff(Role.SUPERVISOR)
    board = await live.staff(supervisor)
    ack = await board.call("board.figures", {"team_id": "not-a-uuid"})
    assert ack["ok"] is False
    assert ack["error"]["code"] == "validation_failed"
    assert "team_id" in ack["error"]["message"]
    ack = await board.call("board.snapshot", {"surprise": 1})
    assert ack["ok"] is False
    assert ack["error"]["code"] == "validation_failed"
