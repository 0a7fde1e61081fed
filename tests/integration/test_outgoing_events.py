"""Every event the server sends after a commit, zulip-style: real service calls on the real
app (real sockets and REST), each event's payload checked against its one schema
(``<capability>/outgoing.py``) and its exact recipients; and the supervisor board's snapshot
plus the events it received equals a fresh snapshot."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web
from pydantic import BaseModel

from livedesk.kit.context import DB
from livedesk.kit.db import Database, Outgoing
from livedesk.models import Role
from livedesk.realtime import rooms
from livedesk.realtime.emit import emit
from livedesk.settings import Settings
from livedesk.wiring.outgoing import outgoing_schemas
from tests.integration.test_payments import StaffHttp, add_products

SCHEMAS: dict[str, type[BaseModel]] = outgoing_schemas()
Target = tuple[tuple[str, ...], str]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"presence_grace_seconds": 0.0})


class Captured:
    """What the app's transaction scopes sent through its event sink, in order."""

    def __init__(self, app: web.Application) -> None:
        self.sent: list[Outgoing] = []
        db: Database = app[DB]
        inner = db.sink()

        async def capture(outgoing: Outgoing) -> None:
            self.sent.append(outgoing)
            await inner(outgoing)

        db.event_sink = capture

    def named(self, event: str) -> list[Outgoing]:
        return [o for o in self.sent if o.event == event]

    def deliveries(self, event: str) -> Iterator[tuple[dict[str, Any], set[Target]]]:
        """Each distinct payload of ``event`` with every (rooms, namespace) it went to."""
        targets: dict[str, set[Target]] = defaultdict(set)
        for o in self.named(event):
            room = tuple(o.room) if isinstance(o.room, list) else (o.room,)
            targets[json.dumps(o.data, sort_keys=True)].add((room, o.namespace))
        for data, sent_to in targets.items():
            yield json.loads(data), sent_to


@pytest.fixture
async def captured(app: web.Application, live: Any) -> Captured:
    # ``live`` started the app: its database and event sink exist now.
    return Captured(app)


def shopper_tabs(shopper_id: Any, consultation_id: Any) -> Target:
    return tuple(
        rooms.shopper_of(uuid.UUID(str(shopper_id)), uuid.UUID(str(consultation_id)))
    ), rooms.SHOPPER_NS


def staff_tabs(staff_id: Any) -> Target:
    return (rooms.staff(uuid.UUID(str(staff_id))),), rooms.STAFF_NS


BOARD: Target = ((rooms.supervisors(),), rooms.STAFF_NS)


async def test_each_event_validates_and_reaches_exactly_its_recipients(
    live: Any, make_staff: Any, db: Database, captured: Captured
) -> None:
    await add_products(db)
    advisor = await make_staff(Role.ADVISOR)
    other = await make_staff(Role.ADVISOR)
    supervisor = await make_staff(Role.SUPERVISOR)
    board = await live.staff(supervisor)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")

    # A first shopper is offered to the advisor, who declines: the offer is withdrawn, and
    # the shopper leaves the queue.
    first = await live.shopper()
    waiting = await first.ok("queue.join", {"kind": "chat"})
    await console.wait_for("offer.new", lambda c: c["id"] == waiting["id"])
    await console.ok("offer.decline", {"consultation_id": waiting["id"]})
    await first.ok("queue.leave", {"consultation_id": waiting["id"]})

    # A second one is accepted: chat, a read receipt, a call with a recording and a payment.
    visitor = await live.visitor()
    shopper = await live.shopper(visitor["token"])
    c = await shopper.ok("queue.join", {"kind": "video"})
    await console.wait_for("offer.new", lambda x: x["id"] == c["id"])
    await console.ok("offer.accept", {"consultation_id": c["id"]})
    ref = {"consultation_id": c["id"]}
    sent = await shopper.ok("chat.send", {**ref, "client_id": "out-000001", "body": "hello"})
    await console.wait_for("chat.message", lambda m: m["seq"] == sent["seq"])
    await console.ok("chat.read", {**ref, "seq": sent["seq"]})
    await shopper.ok("chat.typing", {**ref, "typing": True})
    await console.wait_for("chat.typing")
    await shopper.ok("call.signal", {**ref, "type": "offer", "data": {"sdp": "v=0"}})
    await console.wait_for("call.signal")
    started = await console.ok("recording.start", ref)
    await shopper.wait_for("recording.updated", lambda r: r["id"] == started["id"])
    await console.ok("recording.stop", {"recording_id": started["id"]})
    http = await StaffHttp(live.url).login(advisor)
    try:
        status, body = await http.request(
            "POST",
            f"/api/v1/consultations/{c['id']}/payment-requests",
            json={"client_key": uuid.uuid4().hex, "lines": [{"sku": "HB-SK-001"}]},
        )
        assert status == 201, body
    finally:
        await http.close()
    await console.ok("consultation.end", ref)
    await console.ok("consultation.close", {**ref, "notes": "done"})
    await board.wait_for("consultation.updated", lambda x: x["id"] == c["id"] and x["status"] == "closed")
    del other  # on the board, never signed in

    # Every event sent has a schema, and its payload holds to it exactly.
    for o in captured.sent:
        assert o.event in SCHEMAS, f"{o.event} has no schema in an outgoing.py"
        SCHEMAS[o.event].model_validate(o.data)
    names = {o.event for o in captured.sent}
    expected_names = {
        "presence.changed",
        "consultation.updated",
        "offer.new",
        "offer.withdrawn",
        "chat.message",
        "chat.read",
        "recording.updated",
        "payment.updated",
        "chat.typing",
        "call.signal",
    }
    assert expected_names <= names, expected_names - names

    # ...and reaches exactly its recipients.
    for data, sent_to in captured.deliveries("presence.changed"):
        assert sent_to == {BOARD, staff_tabs(data["staff_id"])}
    for data, sent_to in captured.deliveries("consultation.updated"):
        expected = {shopper_tabs(data["shopper_id"], data["id"]), BOARD}
        if data["advisor_id"] is not None:
            expected.add(staff_tabs(data["advisor_id"]))
        assert sent_to == expected, data["status"]
    for data, sent_to in captured.deliveries("offer.new"):
        assert sent_to == {staff_tabs(advisor.id)}, data
    withdrawn = list(captured.deliveries("offer.withdrawn"))
    assert [(d["consultation_id"], d["reason"]) for d, _ in withdrawn] == [(waiting["id"], "declined")]
    assert withdrawn[0][1] == {staff_tabs(advisor.id)}
    both = {shopper_tabs(visitor["shopper_id"], c["id"]), staff_tabs(advisor.id)}
    for event in ("chat.message", "chat.read", "chat.typing", "recording.updated"):
        for data, sent_to in captured.deliveries(event):
            assert sent_to == both, (event, data)
    for data, sent_to in captured.deliveries("payment.updated"):
        assert sent_to == {*both, BOARD}, data
    for data, sent_to in captured.deliveries("call.signal"):
        assert sent_to == {staff_tabs(advisor.id)}, data
    # The sender's socket has its message in the ack, and knows it types: the fan-out skips it.
    shopper_sid = shopper.sio.get_sid("/shopper")
    assert [o.skip_sid for o in captured.named("chat.message")] == [shopper_sid] * 2
    assert [o.skip_sid for o in captured.named("chat.typing")] == [shopper_sid] * 2


# A valid payload (the app's test fixture checks every event sent against its schema).
PRESENCE = {
    "staff_id": str(uuid.uuid4()),
    "status": "away",
    "chosen": "away",
    "since": "2026-12-06T10:00:00+00:00",
}


async def test_a_rolled_back_transaction_sends_nothing(app: web.Application, captured: Captured) -> None:
    async def change_then_fail() -> None:
        async with app[DB].transaction() as session:
            emit(session, "presence.changed", PRESENCE, room=rooms.supervisors(), namespace=rooms.STAFF_NS)
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await change_then_fail()
    async with app[DB].transaction() as session:
        emit(session, "presence.changed", PRESENCE, room=rooms.supervisors(), namespace=rooms.STAFF_NS)
        # Nothing leaves before the commit.
        assert captured.sent == []
    assert [o.data for o in captured.sent] == [PRESENCE]


# --- the supervisor board -------------------------------------------------------------------

# What the board keeps of a consultation (web/supervisor/state.js, ``pick``).
BOARD_FIELDS = (
    "id",
    "kind",
    "status",
    "advisor_id",
    "nominated_advisor_id",
    "wait_for_nominated",
    "skills",
    "language",
    "requested_at",
    "queued_at",
    "accepted_at",
    "ended_at",
)
ON_BOARD = {"requested", "queued", "offered", "active", "wrap_up"}


def apply(board: dict[str, Any], event: str, data: dict[str, Any]) -> None:
    """The page's rules (``BoardState.applyPresence`` / ``applyConsultation``) in Python."""
    if event == "presence.changed":
        advisor = board["advisors"].get(data["staff_id"])
        assert advisor is not None, "an advisor not on the board: the page would take a fresh snapshot"
        advisor["status"], advisor["since"] = data["status"], data["since"]
    elif event == "consultation.updated":
        known = board["consultations"].get(data["id"])
        if data["status"] in ON_BOARD:
            merged = {**(known or {}), **{f: data[f] for f in BOARD_FIELDS if f in data}}
            # Who an offer rings is in the snapshot only; it ends with the offer.
            merged["offered_to_id"] = (
                (known or {}).get("offered_to_id") if data["status"] == "offered" else None
            )
            board["consultations"][data["id"]] = merged
        else:
            board["consultations"].pop(data["id"], None)


def as_board(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {
        "advisors": {a["staff_id"]: dict(a) for a in snapshot["advisors"]},
        "consultations": {c["id"]: dict(c) for c in snapshot["consultations"]},
    }


def normalised(board: dict[str, Any]) -> dict[str, Any]:
    # Times compare as instants: the snapshot and the events may spell UTC differently.
    def instant(value: Any) -> Any:
        if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        return value

    return {
        part: {key: {f: instant(v) for f, v in row.items()} for key, row in rows.items()}
        for part, rows in board.items()
    }


async def test_board_snapshot_plus_its_events_equals_a_fresh_snapshot(live: Any, make_staff: Any) -> None:
    advisor = await make_staff(Role.ADVISOR)
    await make_staff(Role.ADVISOR)  # never signed in: offline throughout
    supervisor = await make_staff(Role.SUPERVISOR)
    board_socket = await live.staff(supervisor)
    board = as_board(await board_socket.ok("board.snapshot"))
    seen = len(board_socket.events)

    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    left = await live.shopper()
    gone = await left.ok("queue.join", {"kind": "chat"})
    await console.wait_for("offer.new", lambda c: c["id"] == gone["id"])
    await console.ok("offer.decline", {"consultation_id": gone["id"]})
    await left.ok("queue.leave", {"consultation_id": gone["id"]})
    shopper = await live.shopper()
    c = await shopper.ok("queue.join", {"kind": "video"})
    await console.wait_for("offer.new", lambda x: x["id"] == c["id"])
    await console.ok("offer.accept", {"consultation_id": c["id"]})
    await console.ok("consultation.end", {"consultation_id": c["id"]})
    talking = await shopper.ok("queue.join", {"kind": "chat"})
    await console.ok("consultation.close", {"consultation_id": c["id"], "notes": ""})
    await console.wait_for("offer.new", lambda x: x["id"] == talking["id"])
    await console.ok("offer.accept", {"consultation_id": talking["id"]})
    await console.ok("presence.set", {"status": "away"})

    # Everything the server sent to the board has arrived (the last change is the away).
    await board_socket.wait_for("presence.changed", lambda p: p["status"] == "away")
    await board_socket.wait_for(
        "consultation.updated", lambda x: x["id"] == talking["id"] and x["status"] == "active"
    )
    for event, data in board_socket.events[seen:]:
        apply(board, event, data)
    fresh = as_board(await board_socket.ok("board.snapshot"))
    assert normalised(board) == normalised(fresh)
    assert list(fresh["consultations"]) == [talking["id"]]
    assert fresh["advisors"][str(advisor.id)]["status"] == "away"
