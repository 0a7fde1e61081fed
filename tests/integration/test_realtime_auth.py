"""Who may connect and act: connect-time authentication, per-event authorisation, and the
always-answering ack (malformed, oversize, unknown and unauthorised events included)."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
import socketio
from aiohttp import web
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from pydantic import SecretStr
from sqlalchemy import delete

from livedesk.customers.merge import merge_shoppers
from livedesk.identity import VisitorClaims, VisitorTokens, sign_shop_customer_id
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import Role, StaffSession
from livedesk.realtime.server import STAFF_SOCKETS
from livedesk.settings import Settings
from tests.conftest import SocketClient


async def _refused(url: str, namespace: str, **kwargs: Any) -> str:
    client = SocketClient(namespace)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, **kwargs)
    errors = client.received("connect_error")
    assert errors, "refused without saying why"
    return str(errors[0])


async def test_shopper_connect_needs_a_valid_token(live: Any, settings: Settings) -> None:
    assert "token_missing" in await _refused(live.url, "/shopper")
    assert "token_invalid" in await _refused(live.url, "/shopper", auth={"token": "not-a-token"})
    forged = URLSafeTimedSerializer("another-secret", salt="livedesk.visitor.v1").dumps({"s": "x", "v": "y"})
    assert "token_invalid" in await _refused(live.url, "/shopper", auth={"token": forged})


async def test_expired_visitor_token_is_refused(live: Any, settings: Settings) -> None:
    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - settings.visitor_token_hours * 3600 - 60

    visitor = await live.visitor()
    past = URLSafeTimedSerializer(
        settings.secret_key.get_secret_value(), salt="livedesk.visitor.v1", signer=PastSigner
    )
    old = past.dumps({"s": visitor["shopper_id"], "v": "v1"})
    assert "token_expired" in await _refused(live.url, "/shopper", auth={"token": old})


async def test_wrong_origin_is_refused(live: Any) -> None:
    token = (await live.visitor())["token"]
    client = SocketClient("/shopper")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(live.url, auth={"token": token}, headers={"Origin": "https://evil.example"})
    # The same token from the page's own origin connects.
    ok = SocketClient("/shopper")
    await ok.connect(live.url, auth={"token": token}, headers={"Origin": live.url})
    await ok.close()


async def test_staff_connect_needs_a_login_session(live: Any) -> None:
    assert "unauthenticated" in await _refused(live.url, "/staff")
    assert "unauthenticated" in await _refused(
        live.url, "/staff", headers={"Cookie": "livedesk_session=forged"}
    )


async def test_every_event_gets_an_ack(live: Any) -> None:
    shopper = await live.shopper()
    unknown = await shopper.call("no.such.event", {})
    assert unknown == {
        "ok": False,
        "error": {"code": "unknown_event", "message": unknown["error"]["message"]},
    }
    assert (await shopper.call("queue.join", "not an object"))["error"]["code"] == "bad_payload"
    bad = await shopper.call("queue.join", {"kind": "telepathy"})
    assert bad["error"]["code"] == "validation_failed"
    assert "kind" in bad["error"]["message"]
    extra = await shopper.call("queue.join", {"kind": "chat", "surprise": 1})
    assert extra["error"]["code"] == "validation_failed"
    assert "surprise" in extra["error"]["message"]
    huge = await shopper.call("chat.send", {"consultation_id": "x", "body": "a" * 100_000})
    assert huge["error"]["code"] == "payload_too_large"
    # Shoppers cannot use staff events: the shopper namespace does not know them.
    staff_only = await shopper.call(
        "offer.accept", {"consultation_id": "00000000-0000-0000-0000-000000000000"}
    )
    assert staff_only["error"]["code"] == "unknown_event"


async def test_a_shopper_cannot_touch_another_consultation(live: Any, make_staff: Any) -> None:
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    alice = await live.shopper()
    bob = await live.shopper()
    consultation = await alice.ok("queue.join", {"kind": "chat"})
    await console.wait_for("offer.new")
    await console.ok("offer.accept", {"consultation_id": consultation["id"]})
    await alice.ok(
        "chat.send", {"consultation_id": consultation["id"], "client_id": "alice-0001", "body": "private"}
    )

    ref = {"consultation_id": consultation["id"]}
    for event, payload in [
        ("chat.sync", {**ref, "after_seq": 0}),
        ("chat.send", {**ref, "client_id": "bob-00001", "body": "hi"}),
        ("chat.typing", {**ref, "typing": True}),
        ("chat.read", {**ref, "seq": 1}),
        ("consultation.get", ref),
        ("consultation.end", ref),
        ("call.signal", {**ref, "type": "offer", "data": {"sdp": "x"}}),
        ("queue.leave", ref),
    ]:
        ack = await bob.call(event, payload)
        assert ack["ok"] is False, (event, ack)
        assert ack["error"]["code"] == "not_a_party", (event, ack)
    assert not bob.received("chat.message")
    # Alice's conversation is untouched.
    history = await alice.ok("chat.sync", {**ref, "after_seq": 0})
    assert [m["body"] for m in history["messages"]] == ["private"]


async def test_an_advisor_cannot_act_on_someone_elses_consultation(live: Any, make_staff: Any) -> None:
    mine = await make_staff(Role.ADVISOR)
    other = await make_staff(Role.ADVISOR)
    console = await live.staff(mine)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    shopper = await live.shopper()
    consultation = await shopper.ok("queue.join", {"kind": "chat"})
    await console.wait_for("offer.new")
    outsider = await live.staff(other)
    ref = {"consultation_id": consultation["id"]}
    assert (await outsider.call("offer.accept", ref))["error"]["code"] == "not_a_party"
    await console.ok("offer.accept", ref)
    assert (await outsider.call("chat.sync", {**ref, "after_seq": 0}))["error"]["code"] == "not_a_party"
    assert (await outsider.call("consultation.close", ref))["error"]["code"] == "not_a_party"


async def test_supervisor_may_read_but_not_take_consultations(live: Any, make_staff: Any) -> None:
    advisor = await make_staff(Role.ADVISOR)
    boss = await make_staff(Role.SUPERVISOR)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    board = await live.staff(boss)
    shopper = await live.shopper()
    consultation = await shopper.ok("queue.join", {"kind": "chat"})
    ref = {"consultation_id": consultation["id"]}
    seen = await board.ok("consultation.get", ref)
    assert seen["status"] in {"queued", "offered"}
    assert (await board.call("offer.accept", ref))["error"]["code"] == "forbidden"
    assert (await board.call("chat.send", {**ref, "client_id": "boss-0001", "body": "x"}))["ok"] is False


async def test_signed_shop_customer_id_links_the_visitor(live: Any, settings: Settings) -> None:
    secret = "shop-secret-for-tests"
    assert settings.shop_signing_secret.get_secret_value() == secret
    first = await live.visitor(
        shop_customer_id="C1001", shop_signature=sign_shop_customer_id(secret, "C1001")
    )
    again = await live.visitor(
        shop_customer_id="C1001", shop_signature=sign_shop_customer_id(secret, "C1001")
    )
    assert first["linked"] is True
    assert first["shopper_id"] == again["shopper_id"]
    anonymous = await live.visitor()
    assert anonymous["linked"] is False
    assert anonymous["shopper_id"] != first["shopper_id"]
    forged = await live.http.post(
        "/api/v1/visitors",
        json={"shop_customer_id": "C1001", "shop_signature": sign_shop_customer_id("guess", "C1001")},
    )
    assert forged.status == 401
    assert (await forged.json())["error"]["code"] == "bad_shop_signature"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"shop_signing_secret": SecretStr("shop-secret-for-tests"), "presence_grace_seconds": 0.0}
    )


async def test_disabling_an_advisor_closes_their_open_sockets(live: Any, make_staff: Any) -> None:
    from tests.conftest import login

    advisor = await make_staff(Role.ADVISOR)
    admin = await make_staff(Role.ADMIN)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    assert console.sio.connected
    headers = await login(live.http, admin)
    response = await live.http.post(f"/api/v1/staff/{advisor.id}/disable", headers=headers)
    assert response.status == 200
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while console.sio.connected:
        assert loop.time() < deadline, "the disabled advisor's socket stayed open"
        await asyncio.sleep(0.05)


async def test_token_of_an_unknown_shopper_is_refused(live: Any, settings: Settings) -> None:
    # Signed with the right key, but its profile is gone (erased): refused, not a crash.
    tokens = VisitorTokens(settings.secret_key.get_secret_value(), 3600)
    orphan = tokens.issue(VisitorClaims(shopper_id=uuid.uuid4(), visitor_id="gone"))
    assert "unknown_shopper" in await _refused(live.url, "/shopper", auth={"token": orphan})


async def test_token_of_a_merged_shopper_follows_only_a_proven_merge(live: Any, db: Database) -> None:
    """A staff member's merge joins two histories, not two browsers: the merged guest's token
    is refused (and its renewal starts a new guest). A proven merge (the shop's signature, a
    verified e-mail) lets it speak for the surviving profile."""
    survivor, merged = await live.visitor(), await live.visitor()
    async with db.transaction() as session:
        await merge_shoppers(
            session, uuid.UUID(survivor["shopper_id"]), uuid.UUID(merged["shopper_id"]), actor_staff_id=None
        )
    assert "token_revoked" in await _refused(live.url, "/shopper", auth={"token": merged["token"]})
    renewed = await live.visitor(previous_token=merged["token"])
    assert renewed["shopper_id"] not in (merged["shopper_id"], survivor["shopper_id"])

    guest = await live.visitor()
    async with db.transaction() as session:
        await merge_shoppers(
            session,
            uuid.UUID(survivor["shopper_id"]),
            uuid.UUID(guest["shopper_id"]),
            actor_staff_id=None,
            proof={"kind": "shop_signature"},
        )
    sock = await live.shopper(guest["token"])
    joined = await sock.ok("queue.join", {"kind": "chat"})
    assert joined["shopper_id"] == survivor["shopper_id"]


async def test_staff_sockets_recheck_their_login_sessions_together(
    app: web.Application, live: Any, make_staff: Any, db: Database
) -> None:
    """The process checks the sessions behind all its staff sockets in one pass: a good
    session carries on and, if used since, is kept alive; a signed-out one's sockets are
    closed — an idle tab too — and an event that races the close is refused."""
    advisors = [await make_staff(Role.ADVISOR) for _ in range(3)]
    cookies = [await live.staff_cookie(a) for a in advisors]
    consoles = [await live.staff(a, c) for a, c in zip(advisors, cookies, strict=True)]
    digests = [hashlib.sha256(c.encode()).hexdigest() for c in cookies]
    idle_since = utcnow() - timedelta(minutes=5)
    async with db.transaction() as session:
        for digest in digests:
            row = await session.get(StaffSession, digest)
            assert row is not None
            row.last_seen_at = idle_since
        # The third advisor signs out elsewhere.
        await session.execute(delete(StaffSession).where(StaffSession.id == digests[2]))
    # Only the first uses its socket before the pass.
    answer = await consoles[0].call("no.such.event", {})
    assert answer["error"]["code"] == "unknown_event"

    staff_sockets = app[STAFF_SOCKETS]
    assert await staff_sockets.recheck_sessions() == 1

    async with db.read() as session:
        used = await session.get(StaffSession, digests[0])
        unused = await session.get(StaffSession, digests[1])
    assert used is not None
    assert used.last_seen_at > idle_since + timedelta(minutes=4)  # refreshed, as a request would
    assert unused is not None
    assert unused.last_seen_at == idle_since  # an open tab alone does not keep a session alive
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while consoles[2].sio.connected:
        assert loop.time() < deadline, "the signed-out advisor's idle socket stayed open"
        await asyncio.sleep(0.05)
    assert consoles[0].sio.connected
    assert consoles[1].sio.connected
    assert (await consoles[1].call("no.such.event", {}))["error"]["code"] == "unknown_event"


async def test_an_event_racing_the_close_of_an_ended_session_is_refused(
    app: web.Application, live: Any, make_staff: Any, db: Database
) -> None:
    advisor = await make_staff(Role.ADVISOR)
    cookie = await live.staff_cookie(advisor)
    console = await live.staff(advisor, cookie)
    staff_sockets = app[STAFF_SOCKETS]
    (ctx,) = staff_sockets.contexts.values()
    ctx.ended = True  # as the pass marks it just before it closes the socket
    answer = await console.call("presence.list")
    assert answer["error"]["code"] == "session_expired"
