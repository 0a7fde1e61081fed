"""One CSRF rule (issue 18, item 3): a request is cookie-authenticated only where its route
reads the staff session (``identity.auth.current_staff``), and only there does a write need the
session's X-CSRF-Token (and an allowed Origin). Public shopper routes never read it, so a
staff cookie in the same browser changes nothing for them; the Engine.IO endpoint is guarded
by its Origin check and the session read at connect, so staff long polling works; sign-in
refuses a foreign Origin and anything but JSON."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestClient

from livedesk.identity import CSRF_HEADER, SESSION_COOKIE
from livedesk.models import Role
from livedesk.settings import Settings
from tests.conftest import SocketClient, StaffAccount, login
from tests.integration.test_booking_api import booking_body, confirm, make_type, next_slot, set_hours

Client = TestClient[web.Request, web.Application]
LOGIN = "/api/v1/auth/login"
EVIL = "https://evil.example"
# A sibling host: same site, other origin. SameSite=Lax cookies ride along on its requests.
SIBLING = "http://shop.127.0.0.1.nip.io"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A long poll is answered at the latest by the next ping: a short interval lets a polling
    # client's disconnect finish in a second instead of waiting out the default 25 s.
    return settings.model_copy(
        update={
            "booking_rate_limit": "1000/minute",
            "socket_ping_interval_seconds": 1,
            "socket_ping_timeout_seconds": 2,
        }
    )


def origin(client: Client) -> str:
    return str(client.make_url("/")).rstrip("/")


@asynccontextmanager
async def anonymous(client: Client) -> AsyncIterator[aiohttp.ClientSession]:
    """A second browser on the same server with no cookies at all."""
    async with aiohttp.ClientSession(base_url=origin(client)) as other:
        yield other


async def answer(response: aiohttp.ClientResponse) -> tuple[int, str | None]:
    body = await response.json()
    return response.status, body.get("error", {}).get("code") if isinstance(body, dict) else None


# ------------------------------------------------------------ a staff cookie on public routes


async def test_signed_in_advisor_can_start_a_shoppers_visit_in_the_same_browser(
    client: Client, live: Any, make_staff: Any
) -> None:
    advisor = await make_staff(Role.ADVISOR)
    await login(client, advisor)
    assert any(c.key == SESSION_COOKIE for c in client.session.cookie_jar)
    # The widget's own request: no CSRF header (it has no staff session to echo), from our origin.
    response = await client.post("/api/v1/visitors", json={}, headers={"Origin": origin(client)})
    assert response.status == 201, await response.text()
    token = (await response.json())["token"]
    shopper = await live.shopper(token)
    assert shopper.sio.connected
    # The cookie granted the shopper nothing and cost the advisor nothing.
    assert (await client.get("/api/v1/auth/me")).status == 200


async def test_a_staff_cookie_does_not_block_a_shoppers_booking_journey(
    client: Client, make_staff: Any
) -> None:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR, skills=["skincare"], languages=["en"], timezone="Asia/Tokyo")
    ctype = await make_type(client, admin)
    await set_hours(client, advisor)
    await login(client, advisor)  # the advisor stays signed in for the rest
    start = next_slot(300)

    created = await client.post("/api/v1/bookings", json=booking_body(ctype["id"], start, advisor.id))
    assert created.status == 201, await created.text()
    confirmed = await confirm(client, await created.json())
    token = confirmed["token"]
    moved = await client.post(
        "/api/v1/bookings/reschedule",
        json={"token": token, "start": (start + timedelta(hours=1)).isoformat()},
    )
    assert moved.status == 200, await moved.text()
    cancelled = await client.post("/api/v1/bookings/cancel", json={"token": token, "reason": "plans changed"})
    assert cancelled.status == 200, await cancelled.text()
    assert (await cancelled.json())["status"] == "cancelled"


async def test_public_routes_answer_alike_with_and_without_a_staff_cookie(
    client: Client, live: Any, make_staff: Any
) -> None:
    """Every public shopper write gives a signed-in browser (no CSRF header) exactly the answer
    a cookie-less one gets: the route's own, never csrf_failed."""
    await login(client, await make_staff(Role.ADVISOR))
    bearer = {"Authorization": f"Bearer {(await live.visitor())['token']}"}
    nowhere = uuid.uuid4()
    bogus = {"token": "x" * 40}
    cases: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("/api/v1/bookings", {}, {}),
        ("/api/v1/bookings/confirm", bogus, {}),
        ("/api/v1/bookings/reschedule", {**bogus, "start": "2030-01-01T10:00:00+00:00"}, {}),
        ("/api/v1/bookings/cancel", bogus, {}),
        ("/api/v1/bookings/join", bogus, {}),
        ("/api/v1/intake-responses", {}, bearer),
        (f"/api/v1/consultations/{nowhere}/satisfaction", {"answers": {}}, bearer),
        ("/api/v1/visitors/email-code", {}, bearer),
        ("/api/v1/visitors/email-code/check", {}, bearer),
        ("/api/v1/satisfaction/link/info", bogus, {}),
        ("/api/v1/satisfaction/link", {**bogus, "answers": {}}, {}),
        # A shopper route that also serves staff: with a visitor token, that is what it reads.
        (f"/api/v1/payment-requests/{nowhere}/checkout", {}, bearer),
    ]
    async with anonymous(client) as stranger:
        for path, body, headers in cases:
            signed_in = await answer(await client.post(path, json=body, headers=headers))
            cookieless = await answer(await stranger.post(path, json=body, headers=headers))
            assert signed_in == cookieless, path
            assert signed_in[1] != "csrf_failed", path


# ------------------------------------------------------------ staff writes keep their guard


async def test_staff_writes_without_the_token_are_still_refused(client: Client, make_staff: Any) -> None:
    headers = await login(client, await make_staff(Role.ADMIN))
    refused = [
        await client.post("/api/v1/teams", json={"name": "No header"}),
        await client.post("/api/v1/teams", json={"name": "Wrong"}, headers={CSRF_HEADER: "x" * 43}),
        await client.post("/api/v1/teams", json={"name": "Foreign"}, headers={**headers, "Origin": EVIL}),
        await client.post("/api/v1/teams", json={"name": "Sibling"}, headers={**headers, "Origin": SIBLING}),
        # A route that takes a visitor token or a staff cookie: with the cookie, it is staff's.
        await client.post(f"/api/v1/consultations/{uuid.uuid4()}/files", data=b"x"),
        # Signing out is a write on the session too (a forced sign-out is a nuisance attack).
        await client.post("/api/v1/auth/logout"),
    ]
    for response in refused:
        assert await answer(response) == (403, "csrf_failed"), response.url
    assert await (await client.get("/api/v1/teams")).json() == []
    assert (await client.get("/api/v1/auth/me")).status == 200  # still signed in

    created = await client.post("/api/v1/teams", json={"name": "Kimono"}, headers=headers)
    assert created.status == 201, await created.text()
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status == 200
    assert (await client.get("/api/v1/auth/me")).status == 401


# ------------------------------------------------------------ staff sockets over long polling


async def polling_staff(live: Any, cookie: str, origin_header: str) -> SocketClient:
    """A staff socket over long polling that sends, like a browser, the session cookie and the
    page's Origin on every request: the handshake GET and each POST of packets (the Engine.IO
    client itself repeats custom headers on the handshake only)."""
    sock = SocketClient("/staff")
    await sock.http.close()
    sock.http = aiohttp.ClientSession(
        headers={"Cookie": f"{SESSION_COOKIE}={cookie}", "Origin": origin_header}
    )
    sock.sio.eio.http = sock.http
    try:
        await sock.sio.connect(live.url, namespaces=["/staff"], transports=["polling"], wait_timeout=5)
    except Exception:
        await sock.http.close()
        raise
    return sock


async def test_staff_socket_connects_and_works_over_long_polling(
    client: Client, live: Any, make_staff: Any
) -> None:
    advisor: StaffAccount = await make_staff(Role.ADVISOR)
    cookie = await live.staff_cookie(advisor)
    sock = await polling_staff(live, cookie, live.url)
    try:
        assert sock.sio.transport() == "polling"
        # Each event is a POST /socket.io/ carrying the cookie; its ack comes back by GET.
        away = await sock.ok("presence.set", {"status": "away"})
        assert away["status"] == "away"
        listed = {p["staff_id"]: p["status"] for p in await sock.ok("presence.list")}
        assert listed[str(advisor.id)] == "away"
    finally:
        await sock.close()


async def test_staff_long_polling_from_a_foreign_origin_or_without_a_session_is_refused(
    live: Any, make_staff: Any
) -> None:
    cookie = await live.staff_cookie(await make_staff(Role.ADVISOR))
    for bad_origin in (EVIL, SIBLING):
        with pytest.raises(socketio.exceptions.ConnectionError):
            await polling_staff(live, cookie, bad_origin)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await polling_staff(live, "not-a-session", live.url)


# ------------------------------------------------------------ login CSRF


async def test_login_refuses_a_foreign_origin_and_anything_but_json(client: Client, make_staff: Any) -> None:
    account = await make_staff(Role.ADMIN)
    credentials = f'{{"email": "{account.email}", "password": "{account.password}"}}'

    async def attempt(content_type: str, origin_header: str | None) -> tuple[int, str | None]:
        headers = {"Content-Type": content_type}
        if origin_header is not None:
            headers["Origin"] = origin_header
        return await answer(await client.post(LOGIN, data=credentials, headers=headers))

    # What a hostile page can send without a CORS preflight: a form or text/plain body.
    assert await attempt("text/plain", SIBLING) == (403, "csrf_failed")
    assert await attempt("text/plain", EVIL) == (403, "csrf_failed")
    assert await attempt("application/json", SIBLING) == (403, "csrf_failed")
    assert await attempt("application/json", "null") == (403, "csrf_failed")
    assert await attempt("text/plain", origin(client)) == (415, "unsupported_media_type")
    assert await attempt("application/x-www-form-urlencoded", None) == (415, "unsupported_media_type")
    assert await attempt("multipart/form-data; boundary=x", None) == (415, "unsupported_media_type")
    assert not any(c.key == SESSION_COOKIE for c in client.session.cookie_jar)

    # Our own page (same Origin, JSON) and tools that send no Origin still sign in.
    assert (await attempt("application/json; charset=utf-8", origin(client)))[0] == 200
    assert (await attempt("application/json", None))[0] == 200
    assert any(c.key == SESSION_COOKIE for c in client.session.cookie_jar)
