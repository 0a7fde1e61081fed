"""Call signalling between the parties only, in order; ICE servers from settings only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import pytest
from pydantic import SecretStr

from livedesk.models import Role
from livedesk.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"presence_grace_seconds": 0.0})


async def test_signalling_is_relayed_in_order_between_the_parties(live: Any, make_staff: Any) -> None:
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    shopper = await live.shopper()
    bystander = await live.shopper()
    consultation = await shopper.ok("queue.join", {"kind": "video"})
    ref = {"consultation_id": consultation["id"]}
    early = await shopper.call("call.signal", {**ref, "type": "offer", "data": {"sdp": "v=0"}})
    assert early["error"]["code"] == "not_active"
    await console.wait_for("offer.new")
    await console.ok("offer.accept", ref)

    await shopper.ok("call.signal", {**ref, "type": "offer", "data": {"type": "offer", "sdp": "v=0 shopper"}})
    for i in range(20):
        await shopper.ok(
            "call.signal", {**ref, "type": "candidate", "data": {"candidate": f"c{i}", "sdpMid": "0"}}
        )
    await console.ok(
        "call.signal", {**ref, "type": "answer", "data": {"type": "answer", "sdp": "v=0 advisor"}}
    )

    await console.wait_for("call.signal", lambda s: s["data"] and s["data"].get("candidate") == "c19")
    received = console.received("call.signal")
    assert [s["type"] for s in received] == ["offer"] + ["candidate"] * 20
    assert [s["data"]["candidate"] for s in received[1:]] == [f"c{i}" for i in range(20)]
    assert all(s["from"] == "shopper" for s in received)
    answer = await shopper.wait_for("call.signal")
    assert answer["type"] == "answer"
    assert answer["from"] == "advisor"
    # Nobody else hears any of it.
    assert not bystander.received("call.signal")
    assert not shopper.received("call.signal")[1:]

    await shopper.ok("call.signal", {**ref, "type": "hangup"})
    assert (await console.wait_for("call.signal", lambda s: s["type"] == "hangup"))["data"] is None


async def test_ice_servers_need_a_party_and_come_from_settings_only(live: Any, make_staff: Any) -> None:
    anonymous = await live.http.get("/api/v1/ice-servers")
    assert anonymous.status == 401
    token = (await live.visitor())["token"]
    response = await live.http.get("/api/v1/ice-servers", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    assert await response.json() == {"ice_servers": []}  # nothing configured: no public default
    bad = await live.http.get("/api/v1/ice-servers", headers={"Authorization": "Bearer forged"})
    assert bad.status == 401


async def test_turn_credentials_follow_the_turn_rest_scheme(settings: Settings) -> None:
    from livedesk.calls.ice import ice_servers

    configured = settings.model_copy(
        update={
            "stun_urls": ["stun:turn.example.test:3478"],
            "turn_urls": ["turn:turn.example.test:3478?transport=udp"],
            "turn_secret": SecretStr("coturn-secret"),
            "turn_ttl_seconds": 600,
        }
    )
    now = time.time()
    stun, turn = ice_servers(configured, "shopper-1", now=now)
    assert stun == {"urls": ["stun:turn.example.test:3478"]}
    expiry, user = turn["username"].split(":")
    assert user == "shopper-1"
    assert int(expiry) == int(now + 600)
    expected = base64.b64encode(hmac.new(b"coturn-secret", turn["username"].encode(), hashlib.sha1).digest())
    assert turn["credential"] == expected.decode()
