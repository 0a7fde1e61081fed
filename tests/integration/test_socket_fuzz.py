"""Socket.IO fuzzing with hypothesis: wrong types, huge payloads, unknown events, floods.

A shopper and an advisor in one consultation (the fuzzers) throw generated events at the
server — known and unknown names, payloads of every JSON shape, fields of the wrong type,
other people's consultation ids, strings far over the size limit. Every event must be
answered with an ack of the protocol's shape and never ``internal``; meanwhile a second
shopper and advisor (the bystanders) go on chatting, and afterwards every message stored
before the fuzzing is still there, unchanged, and every message the fuzzers had acknowledged
is stored exactly once.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import hypothesis
import pytest
import socketio
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from sqlalchemy import select

from livedesk.kit.db import Database
from livedesk.models import Message, Role
from livedesk.realtime.protocol import MAX_EVENT_BYTES
from livedesk.settings import Settings
from livedesk.wiring.realtime import shopper_events, staff_events
from tests.conftest import SocketClient, wait_until

EXAMPLES = int(os.environ.get("LIVEDESK_FUZZ_EXAMPLES", "300"))
T = TypeVar("T")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "presence_grace_seconds": 0.0,
            "queue_rate_limit": "1000/minute",
            # Above what the bystanders send while the fuzzers work, below the flood.
            "chat_rate_limit": "100/10seconds",
        }
    )


@dataclass
class Pair:
    shopper: SocketClient
    advisor: SocketClient
    consultation_id: str


async def _pair(live: Any, make_staff: Any) -> Pair:
    account = await make_staff(Role.ADVISOR)
    advisor = await live.staff(account)
    await advisor.wait_for("presence.changed", lambda p: p["status"] == "available")
    shopper = await live.shopper()
    cid = (await shopper.ok("queue.join", {"kind": "chat"}))["id"]
    await advisor.wait_for("offer.new", lambda o: o["id"] == cid)
    await advisor.ok("offer.accept", {"consultation_id": cid})
    # Nobody else is offered anything while the fuzzers work.
    await advisor.ok("presence.set", {"status": "away"})
    return Pair(shopper, advisor, cid)


async def _chat(pair: Pair, n: int, tag: str) -> None:
    for i in range(n):
        sender = pair.shopper if i % 2 == 0 else pair.advisor
        other = pair.advisor if i % 2 == 0 else pair.shopper
        client_id = f"{tag}-{i:04d}-{uuid.uuid4().hex[:8]}"
        await sender.ok(
            "chat.send", {"consultation_id": pair.consultation_id, "client_id": client_id, "body": tag}
        )
        await other.wait_for("chat.message", lambda m, c=client_id: m["client_id"] == c)


async def _messages(db: Database) -> dict[tuple[str, int], tuple[str, str, str]]:
    async with db.read() as session:
        rows = (await session.execute(select(Message))).scalars().all()
    return {(str(m.consultation_id), m.seq): (m.client_id, m.kind.value, m.body) for m in rows}


def _assert_ack(ack: Any, event: str) -> None:
    assert isinstance(ack, dict), (event, ack)
    assert isinstance(ack.get("ok"), bool), (event, ack)
    if not ack["ok"]:
        error = ack["error"]
        assert isinstance(error.get("code"), str), (event, ack)
        assert isinstance(error.get("message"), str), (event, ack)
        assert error["code"] != "internal", (event, ack)
        assert "Traceback" not in error["message"], (event, ack)


# --- what the fuzzers send ---------------------------------------------------------------------

KNOWN_EVENTS = sorted(set(shopper_events()) | set(staff_events()))
FIELDS = [
    "consultation_id",
    "client_id",
    "body",
    "kind",
    "type",
    "data",
    "after_seq",
    "seq",
    "typing",
    "status",
    "notes",
    "wait_for_nominated",
    "nominated_advisor_id",
    "if_nominated_unavailable",
    "skills",
    "language",
    "day",
    "team_id",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", "video", "chat", "candidate", "available", "ok", "\x00", "🙂" * 10, "' OR 1=1 --"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


# A valid-looking payload per field: the fuzzers start from these and break one thing.
def _plausible(ids: list[str]) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "consultation_id": st.sampled_from(ids),
        "client_id": st.from_regex(r"[A-Za-z0-9_-]{8,64}", fullmatch=True),
        "body": st.text(min_size=1, max_size=200),
        "kind": st.sampled_from(["text", "chat", "voice", "video", "image", "file", "product", "event"]),
        "type": st.sampled_from(["offer", "answer", "candidate", "restart", "hangup"]),
        "data": st.none() | st.dictionaries(st.sampled_from(["sdp", "candidate", "file_id", "sku"]), scalars),
        "after_seq": st.integers(min_value=-1, max_value=50),
        "seq": st.integers(min_value=-1, max_value=50),
        "typing": st.booleans(),
        "status": st.sampled_from(["available", "away", "offline"]),
        "notes": st.text(max_size=50),
        "wait_for_nominated": st.booleans(),
        "if_nominated_unavailable": st.sampled_from(["ask", "wait", "anyone"]),
    }


SPECS = {**shopper_events(), **staff_events()}


@st.composite
def payloads(draw: st.DrawFn, name: str, ids: list[str]) -> Any:
    """Mostly the event's own fields with plausible values, one or two of them broken, one
    missing or one extra; sometimes anything at all; sometimes far over the size limit."""
    shape = draw(st.sampled_from(["fields"] * 6 + ["any", "huge", "none"]))
    if shape == "none":
        return None
    if shape == "any":
        return draw(json_values)
    if shape == "huge":
        size = draw(st.integers(min_value=MAX_EVENT_BYTES + 1, max_value=4 * MAX_EVENT_BYTES))
        return {"consultation_id": draw(st.sampled_from(ids)), "client_id": "huge-0001", "body": "x" * size}
    plausible = _plausible(ids)
    spec = SPECS.get(name)
    if spec is not None:
        keys = [key for key in spec.payload.model_fields if draw(st.integers(0, 9))]  # 1 in 10 dropped
    else:
        keys = draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True))
    if draw(st.integers(0, 9)) == 0:
        keys.append(draw(st.sampled_from(FIELDS)))
    broken = set(draw(st.lists(st.sampled_from(keys), max_size=1))) if keys else set()
    return {
        key: draw(json_values if key in broken or key not in plausible else plausible[key]) for key in keys
    }


def events(ids: list[str]) -> st.SearchStrategy[tuple[str, Any]]:
    names = st.sampled_from(["known"] * 8 + ["text", "reserved"]).flatmap(
        lambda pick: (
            st.sampled_from(KNOWN_EVENTS)
            if pick == "known"
            else st.text(min_size=1, max_size=30)
            if pick == "text"
            else st.sampled_from(["connect", "disconnect", "message", "*"])
        )
    )
    return names.flatmap(lambda name: st.tuples(st.just(name), payloads(name, ids)))


async def test_fuzzed_events_get_error_acks_and_lose_nothing(
    live: Any, make_staff: Any, db: Database
) -> None:
    fuzz = await _pair(live, make_staff)
    bystanders = await _pair(live, make_staff)
    await _chat(fuzz, 6, "before")
    await _chat(bystanders, 6, "before")
    stored_before = await _messages(db)
    ids = [fuzz.consultation_id, bystanders.consultation_id, str(uuid.uuid4()), "not-a-uuid"]

    loop = asyncio.get_running_loop()
    acked_sends: list[tuple[str, str, str]] = []  # (consultation, client_id, sender) of ok chat.send
    answers: Counter[str] = Counter()

    def on_loop(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(event=events(ids), as_staff=st.booleans())
    def throw(event: tuple[str, Any], as_staff: bool) -> None:
        name, payload = event
        sock = fuzz.advisor if as_staff else fuzz.shopper
        try:
            ack = on_loop(sock.call(name, payload, deadline=10))
        except Exception as exc:
            raise AssertionError(
                f"no ack for {name!r} {str(payload)[:300]} as_staff={as_staff}: {exc!r}"
            ) from exc
        _assert_ack(ack, name)
        answers["ok" if ack["ok"] else ack["error"]["code"]] += 1
        if name == "chat.send" and ack["ok"] and isinstance(payload, dict):
            acked_sends.append(
                (str(payload["consultation_id"]), payload["client_id"], "staff" if as_staff else "shopper")
            )

    # hypothesis drives synchronously from a thread; every socket call runs on this loop, so
    # the bystanders' chat below runs between the fuzzers' events.
    fuzzing = asyncio.create_task(asyncio.to_thread(throw))
    while not fuzzing.done():
        await _chat(bystanders, 2, "during")
        await asyncio.wait([fuzzing], timeout=0.5)
    await fuzzing

    assert answers.total() >= EXAMPLES, answers
    # The generated events reach every layer: unknown names, shape checks and the handlers.
    assert {"unknown_event", "validation_failed", "bad_payload", "payload_too_large", "ok"} <= set(answers), (
        answers
    )
    # Both fuzz sockets are still connected and served, and so are the bystanders.
    assert fuzz.shopper.sio.connected
    assert fuzz.advisor.sio.connected
    await _chat(bystanders, 4, "after")
    stored_after = await _messages(db)
    for key, value in stored_before.items():
        assert stored_after.get(key) == value, (key, value, stored_after.get(key))
    async with db.read() as session:
        rows = (
            await session.execute(select(Message.consultation_id, Message.client_id, Message.sender_kind))
        ).all()
    stored = [(str(c), client_id, sender.value) for c, client_id, sender in rows]
    for sent in acked_sends:
        assert stored.count(sent) == 1, sent
    # Sequences stay gap-free per consultation.
    for cid in {c for c, _ in stored_after}:
        seqs = sorted(seq for c, seq in stored_after if c == cid)
        assert seqs == list(range(1, len(seqs) + 1)), (cid, seqs)


async def test_a_flood_is_answered_and_others_are_still_served(
    live: Any, make_staff: Any, db: Database
) -> None:
    flooder = await _pair(live, make_staff)
    bystanders = await _pair(live, make_staff)
    before = await _messages(db)
    cid = flooder.consultation_id
    # 600 events without waiting for any ack: chat sends far past the rate limit, typing,
    # syncs and unknown events, interleaved.
    calls = []
    for i in range(600):
        kind = i % 4
        if kind == 0:
            payload = {"consultation_id": cid, "client_id": f"flood-{i:05d}", "body": f"flood {i}"}
            calls.append(("chat.send", payload))
        elif kind == 1:
            calls.append(("chat.typing", {"consultation_id": cid, "typing": bool(i % 8)}))
        elif kind == 2:
            calls.append(("chat.sync", {"consultation_id": cid, "after_seq": 0}))
        else:
            calls.append((f"no.such.event.{i}", {"x": i}))
    flood = asyncio.gather(*(flooder.shopper.call(name, payload, deadline=60) for name, payload in calls))
    # The bystanders' messages still go through while the flood is being handled.
    started = asyncio.get_running_loop().time()
    await _chat(bystanders, 4, "beside-the-flood")
    beside = asyncio.get_running_loop().time() - started
    acks = await flood
    for (name, _), ack in zip(calls, acks, strict=True):
        _assert_ack(ack, name)
    codes = [ack["error"]["code"] if not ack["ok"] else "ok" for ack in acks]
    sends = [codes[i] for i in range(0, 600, 4)]
    assert set(sends) <= {"ok", "rate_limited"}, set(sends)
    assert "rate_limited" in sends  # the chat limit held
    assert all(code == "unknown_event" for code in codes[3::4])
    assert beside < 10, beside
    # What was acknowledged is stored, in order, and nothing older changed.
    after = await _messages(db)
    for key, value in before.items():
        assert after[key] == value
    stored_ids = [after[k][0] for k in sorted(k for k in after if k[0] == cid)]
    acked_ids = [calls[i][1]["client_id"] for i in range(0, 600, 4) if codes[i] == "ok"]
    assert stored_ids == acked_ids


async def test_a_frame_over_the_transport_limit_drops_only_that_client(live: Any, make_staff: Any) -> None:
    pair = await _pair(live, make_staff)
    other = await live.shopper()
    # engine.io's own limit (1 MB) is above the protocol's 64 KiB; past it the server closes
    # that one connection rather than buffer it.
    with pytest.raises(socketio.exceptions.TimeoutError):
        await other.call("chat.send", {"body": "y" * 1_200_000}, deadline=5)

    async def dropped() -> bool:
        return not other.sio.connected

    await wait_until(dropped, within=10)
    await _chat(pair, 4, "still-here")
    # A new connection is served as usual.
    again = await live.shopper()
    assert (await again.call("no.such.event"))["error"]["code"] == "unknown_event"
