"""Bad input is never a 500 and never goes unanswered (issue 18, item 4).

An outside client sends what no field may hold — the NUL character (PostgreSQL refuses it in
text), a lone UTF-16 surrogate (not encodable as UTF-8), a 5,000-digit number, JSON nested
100,000 deep, NaN, integers beyond a 32-bit column, the year 1, a 5,000-digit ``Range`` — to
each kind of endpoint: sign-in, visitors, customer search, products, the shop API, booking
slots, survey versions, recording playback, and over Socket.IO ``chat.send``/``chat.sync``/
``chat.read``. Every answer is a 4xx JSON error with a code (422 naming the field when there
is one) or an error ack naming the field; an unreadable Socket.IO packet with an ack id still
gets its ack. Both databases.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from livedesk.kit.db import Database
from livedesk.kit.http import RangeNotSatisfiable, parse_byte_range
from livedesk.models import Role
from tests.conftest import login
from tests.integration.test_booking_api import make_type
from tests.integration.test_integration_api import bearer, make_key
from tests.integration.test_recording_access import _recording

Client = TestClient[web.Request, web.Application]

NUL = "Ha\x00na"
SURROGATE = "Ha\ud800na"
HUGE = "1" + "0" * 5000
DEEP = "[" * 100_000 + "]" * 100_000


@dataclass
class Target:
    """One endpoint: how to call it, a valid body, and the string field (or query/path
    parameter) the attacks go into."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    field: str = ""
    query: dict[str, str] = dc_field(default_factory=dict)
    param: str = ""  # the query parameter the attacks go into
    headers: dict[str, str] = dc_field(default_factory=dict)


async def _login(client: Client, make_staff: Any) -> dict[str, str]:
    return await login(client, await make_staff(Role.ADMIN))


async def _shop(client: Client, make_staff: Any) -> dict[str, str]:
    key, _ = await make_key(client, make_staff)
    return bearer(key)


TARGETS: dict[str, Callable[[Client, Any], Awaitable[Target]]] = {}


def target(name: str) -> Callable[[Callable[[Client, Any], Awaitable[Target]]], Any]:
    def register(build: Callable[[Client, Any], Awaitable[Target]]) -> Any:
        TARGETS[name] = build
        return build

    return register


@target("login")
async def _t_login(client: Client, make_staff: Any) -> Target:
    return Target("POST", "/api/v1/auth/login", {"email": "a@example.test", "password": "pw"}, "email")


@target("visitors")
async def _t_visitors(client: Client, make_staff: Any) -> Target:
    return Target("POST", "/api/v1/visitors", {"display_name": "Hana"}, "display_name")


@target("search")
async def _t_search(client: Client, make_staff: Any) -> Target:
    headers = await _login(client, make_staff)
    return Target("GET", "/api/v1/customers/search", query={"q": "Hana"}, param="q", headers=headers)


@target("products")
async def _t_products(client: Client, make_staff: Any) -> Target:
    headers = await _login(client, make_staff)
    body = {"sku": "SERUM-30", "name": "Serum", "price_minor": 4800}
    return Target("POST", "/api/v1/products", body, "name", headers=headers)


@target("product_list")
async def _t_product_list(client: Client, make_staff: Any) -> Target:
    headers = await _login(client, make_staff)
    return Target("GET", "/api/v1/products", query={"q": "serum"}, param="q", headers=headers)


@target("shop_api")
async def _t_shop(client: Client, make_staff: Any) -> Target:
    headers = await _shop(client, make_staff)
    return Target(
        "PUT", "/api/v1/shop/customers/C-1", {"display_name": "Hana"}, "display_name", headers=headers
    )


async def _send(
    client: Client, t: Target, raw: str | None = None, query: dict[str, str] | None = None
) -> Any:
    headers = dict(t.headers)
    data = None
    if raw is not None:
        headers["Content-Type"] = "application/json"
        data = raw.encode("utf-8", "surrogatepass")
    response = await client.request(t.method, t.path, params=query or t.query, data=data, headers=headers)
    text = await response.text()
    assert response.status < 500, (t.path, response.status, text)
    assert 400 <= response.status < 500, (t.path, response.status, text)
    body = json.loads(text)
    assert isinstance(body["error"]["code"], str), body
    assert body["error"]["code"] != "internal", body
    return response.status, body["error"]


def _with(t: Target, value_json: str) -> str:
    """The target's valid body with its field's value replaced by raw JSON text."""
    assert t.body is not None
    marker = "__ATTACK__"
    text = json.dumps({**t.body, t.field: marker})
    return text.replace(json.dumps(marker), value_json)


@pytest.mark.parametrize("kind", sorted(TARGETS))
async def test_each_endpoint_refuses_each_bad_value(
    kind: str, db_kind: str, client: Client, make_staff: Any
) -> None:
    t = await TARGETS[kind](client, make_staff)
    if t.body is not None:
        # json.dumps writes the NUL and the surrogate as \u escapes, as browsers do.
        for bad in (NUL, SURROGATE):
            status, error = await _send(client, t, _with(t, json.dumps(bad)))
            assert status == 422, error
            assert error["details"][0]["field"] == t.field, error
            assert "NUL" in error["message"] or "surrogate" in error["message"], error
        # The same in a key, and deep inside a list.
        status, error = await _send(client, t, json.dumps({**t.body, NUL: 1}))
        assert status == 422, error
        status, error = await _send(client, t, _with(t, json.dumps(["ok", {"x": SURROGATE}])))
        assert (status, error["details"][0]["field"]) == (422, f"{t.field}.1.x"), error
        for unreadable in (HUGE, "-" + HUGE, "NaN", "1e999", DEEP):
            status, error = await _send(client, t, _with(t, unreadable))
            assert status == 400, error
            assert error["code"] == "bad_request", error
        # 40 levels: valid JSON, deeper than any document livedesk reads.
        status, error = await _send(client, t, _with(t, "[" * 40 + "]" * 40))
        assert status == 422, error
        # A number orjson reads as a float (beyond 64 bits): out of range, not stored.
        status, error = await _send(client, t, _with(t, "1" + "0" * 25))
        assert status == 422, error
    if t.param:
        status, error = await _send(client, t, query={**t.query, t.param: NUL})
        assert status == 422, error
        assert error["details"][0] == {
            "in": "query",
            "field": t.param,
            "message": error["details"][0]["message"],
            "type": "value_error",
        }
        status, error = await _send(client, t, query={**t.query, f"x{NUL}": "1"})
        assert status == 422, error
    if kind == "search":
        status, error = await _send(client, t, query={"q": "Hana", "limit": HUGE})
        assert status == 422, error
        assert error["details"][0]["field"] == "limit", error


async def test_shop_path_parameter_with_nul(db_kind: str, client: Client, make_staff: Any) -> None:
    headers = await _shop(client, make_staff)
    response = await client.put(
        "/api/v1/shop/customers/C%00-1", json={"display_name": "Hana"}, headers=headers
    )
    assert response.status == 422, await response.text()
    error = (await response.json())["error"]
    assert error["details"][0]["in"] == "path"
    assert error["details"][0]["field"] == "shop_customer_id"


async def test_booking_slots_far_outside_the_calendar(db_kind: str, client: Client, make_staff: Any) -> None:
    ctype = await make_type(client, await make_staff(Role.ADMIN))
    base = {"type_id": ctype["id"], "timezone": "Asia/Tokyo"}
    for start, end, named in [
        ("0001-01-01", "0001-01-02", "start"),
        ("9999-12-30", "9999-12-31", "start"),
        ("2026-01-01", "9999-12-31", "end"),
    ]:
        response = await client.get("/api/v1/booking/slots", params={**base, "start": start, "end": end})
        assert response.status == 422, await response.text()
        assert (await response.json())["error"]["details"][0]["field"] == named
    # A sane window still answers.
    response = await client.get(
        "/api/v1/booking/slots", params={**base, "start": "2026-03-02", "end": "2026-03-03"}
    )
    assert response.status == 200, await response.text()


async def test_integers_beyond_a_32_bit_column(db_kind: str, client: Client, make_staff: Any) -> None:
    """``version`` is a bare ``int`` path parameter over an ``integer`` column."""
    await _login(client, make_staff)
    for version in ("3000000000", "-3000000000", HUGE):
        response = await client.get(f"/api/v1/surveys/{uuid.uuid4()}/versions/{version}")
        assert response.status == 422, await response.text()
        assert (await response.json())["error"]["details"][0]["field"] == "version"
    response = await client.get(f"/api/v1/surveys/{uuid.uuid4()}/versions/2147483647")
    assert response.status == 404, await response.text()


async def test_recording_range_with_thousands_of_digits(
    db_kind: str, client: Client, app: web.Application, db: Database, make_staff: Any
) -> None:
    advisor = await make_staff(Role.ADVISOR)
    recording = await _recording(db, app, advisor)
    await login(client, advisor)
    url = f"/api/v1/recordings/{recording.id}/media"
    for header in (f"bytes={HUGE}-", f"bytes=0-{HUGE}", f"bytes=-{HUGE}", f"bytes={HUGE}-5"):
        response = await client.get(url, headers={"Range": header})
        assert response.status in (206, 416), (header, response.status)
        if response.status == 416:
            assert (await response.json())["error"]["code"] == "range_not_satisfiable"
        else:
            # An end (or a suffix) past any file is the whole file.
            assert response.headers["Content-Range"].startswith("bytes 0-"), header
            await response.read()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-" + HUGE, (0, 99)),
        ("bytes=-" + HUGE, (0, 99)),
        ("bytes=00000000000000000000000000010-20", (10, 20)),
        ("bytes=5-0000000000000000000000000009", (5, 9)),
    ],
)
def test_byte_range_reads_long_digit_strings(header: str, expected: tuple[int, int]) -> None:
    assert parse_byte_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=" + HUGE + "-", "bytes=" + HUGE + "-" + HUGE])
def test_byte_range_start_past_any_file(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_byte_range(header, 100)


# --- Socket.IO ----------------------------------------------------------------------------------


class RawShopper:
    """A shopper socket spoken by hand (Engine.IO over a websocket), to send packets no
    Socket.IO client library would."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, base: str, token: str) -> RawShopper:
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        ws = await http.ws_connect(url)
        assert (await ws.receive_str(timeout=5)).startswith("0")
        await ws.send_str("40/shopper," + json.dumps({"token": token}))
        # The shopper's own room may hear an event (a queue place) while the connect is still
        # being answered; Socket.IO clients keep such events until connected (socket.io-client's
        # receiveBuffer), so here they are passed over. The connect answer itself must come.
        while (frame := await ws.receive_str(timeout=5)).startswith("42/shopper,"):
            pass
        assert frame.startswith("40/shopper,"), frame
        return cls(ws)

    async def ack(self, ack_id: int, rest: str) -> Any:
        """Send ``42/shopper,<id><rest>`` and return the ack's payload (answering pings)."""
        await self.ws.send_str(f"42/shopper,{ack_id}{rest}")
        prefix = f"43/shopper,{ack_id}"
        while True:
            frame = await self.ws.receive_str(timeout=5)
            if frame == "2":
                await self.ws.send_str("3")
            elif frame.startswith(prefix):
                return json.loads(frame[len(prefix) :])[0]


def _refused(ack: Any, code: str, named: str | None = None) -> None:
    assert ack["ok"] is False, ack
    assert ack["error"]["code"] == code, ack
    if named is not None:
        assert ack["error"]["details"][0]["field"] == named, ack


async def test_socket_bad_values_get_error_acks(db_kind: str, live: Any) -> None:
    visitor = await live.visitor()
    shopper = await live.shopper(visitor["token"])
    cid = (await shopper.ok("queue.join", {"kind": "chat"}))["id"]
    send = {"consultation_id": cid, "client_id": "bad-input-01", "kind": "text"}
    async with aiohttp.ClientSession() as http:
        raw = await RawShopper.open(http, live.url, visitor["token"])
        # A lone surrogate as browsers write it (JSON.stringify of broken text): named.
        text = json.dumps({**send, "body": SURROGATE})
        assert "\\ud800" in text
        _refused(await raw.ack(1, f'["chat.send",{text}]'), "validation_failed", "body")
        _refused(
            await raw.ack(2, json.dumps(["chat.send", {**send, "body": NUL}])), "validation_failed", "body"
        )
        _refused(
            await raw.ack(3, json.dumps(["chat.send", {**send, "body": "x", NUL: 1}])), "validation_failed"
        )
        # Unreadable packets with an ack id: answered, not dropped.
        for n, rest in enumerate(
            [
                '["chat.send",{',  # cut short
                '["chat.send",' + "[" * 5000 + "]" * 5000 + "]",  # too deep
                f'["chat.sync",{{"consultation_id":"{cid}","after_seq":{HUGE}}}]',  # 5,000 digits
                '{"not": "an array"}',
                "[]",
                "[5]",
                '["chat.send",NaN]',
            ],
            start=10,
        ):
            _refused(await raw.ack(n, rest), "bad_packet")
        # An event name that is not text.
        _refused(await raw.ack(20, json.dumps([f"chat{NUL}", {}])), "unknown_event")
        _refused(await raw.ack(21, '["chat\\udc00",{}]'), "unknown_event")
        # Integers a 32-bit column cannot hold.
        sync = {"consultation_id": cid, "after_seq": 3_000_000_000}
        _refused(await raw.ack(30, json.dumps(["chat.sync", sync])), "validation_failed", "after_seq")
        read = {"consultation_id": cid, "seq": 2**40}
        _refused(await raw.ack(31, json.dumps(["chat.read", read])), "validation_failed", "seq")
        # The connection is still fine.
        ok = await raw.ack(40, json.dumps(["chat.sync", {"consultation_id": cid}]))
        assert ok["ok"] is True, ok
        await raw.ws.close()
    # A real client hears the same.
    ack = await shopper.call("chat.send", {**send, "body": NUL})
    _refused(ack, "validation_failed", "body")
