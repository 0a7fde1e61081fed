"""The authorisation matrix: every REST route and every Socket.IO event × every role.

The matrix is data — ``ROUTES`` and ``EVENTS`` below say which roles may use what. The tests
walk the app's own router and the real-time event table: a route or an event with no row fails
(so does a row whose route or event is gone), and every row is exercised for every role
against the running app: an allowed role gets through (2xx/3xx, or an ``ok`` ack — or, for
events whose state makes them refuse, one of the row's listed business codes), every other
role gets a clear denial (401/403/404 with the JSON error shape; an error ack with a denial
code), never a 5xx or a stack trace.

Roles: anonymous (nothing), shopper (visitor token of the consultation's shopper), another
shopper (a visitor token of somebody else), advisor (the consultation's advisor), another
team's advisor (an advisor in another team, party to nothing), supervisor, admin, and an
integration key (a real key of a real integration, ``Authorization: Bearer ldk_…``).

Adding a route or an event: add its row here (allowed roles, and a request builder when the
default one — path parameters from the shared world, no body — is not a valid request).
"""

from __future__ import annotations

import string
import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web

from livedesk.identity import sessions
from livedesk.integrations import keys
from livedesk.kit.db import Database
from livedesk.kit.paths import WEB_DIR
from livedesk.models import Role, Shopper, Team
from livedesk.pages.shell import page_files
from livedesk.settings import Settings
from livedesk.wiring.realtime import shopper_events, staff_events
from tests.conftest import TEST_PASSWORD, SocketClient, StaffAccount

# --- roles ----------------------------------------------------------------------------------

ANON = "anonymous"
SHOPPER = "shopper"
OTHER_SHOPPER = "another shopper"
ADVISOR = "advisor"
OTHER_ADVISOR = "another team's advisor"
SUPERVISOR = "supervisor"
ADMIN = "admin"
INTEGRATION = "integration key"

ROLES = (ANON, SHOPPER, OTHER_SHOPPER, ADVISOR, OTHER_ADVISOR, SUPERVISOR, ADMIN, INTEGRATION)
EVERYONE = frozenset(ROLES)
STAFF = frozenset({ADVISOR, OTHER_ADVISOR, SUPERVISOR, ADMIN})
VISITORS = frozenset({SHOPPER, OTHER_SHOPPER})
READERS = frozenset({SUPERVISOR, ADMIN})
ONLY_ADMIN = frozenset({ADMIN})
PARTIES = frozenset({SHOPPER, ADVISOR})
STAFF_ROLE = {
    ADVISOR: Role.ADVISOR,
    OTHER_ADVISOR: Role.ADVISOR,
    SUPERVISOR: Role.SUPERVISOR,
    ADMIN: Role.ADMIN,
}

# Error codes that mean "you may not" (as opposed to "not now" or "not like that").
DENIAL_CODES = frozenset(
    {"forbidden", "not_a_party", "unauthenticated", "unknown_event", "token_invalid", "token_expired"}
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A few hundred requests from one address and account in a few seconds.
    return settings.model_copy(
        update={
            "presence_grace_seconds": 0.0,
            "login_rate_limit": "1000/minute",
            "chat_rate_limit": "1000/10seconds",
            "queue_rate_limit": "1000/minute",
        }
    )


# --- the shared world -------------------------------------------------------------------------


def png() -> bytes:
    """A valid 1×1 PNG (uploads are judged by content)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00\xff")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@dataclass
class World:
    """Everybody in the matrix, and the things they may or may not touch."""

    url: str
    db: Database
    make_staff: Any
    http: aiohttp.ClientSession
    accounts: dict[str, StaffAccount]
    team_ids: dict[str, uuid.UUID]
    tokens: dict[str, str]
    shopper_id: str
    consultation_id: str
    file_id: str
    # Sessions minted straight in the database: (cookie, csrf) per staff role.
    staff_sessions: dict[str, tuple[str, str]] = field(default_factory=dict)
    # A real key of a real integration (minted by the fixture).
    integration_key: str = ""

    async def mint_session(self, account: StaffAccount) -> tuple[str, str]:
        async with self.db.transaction() as session:
            found = await sessions.find_account(session, account.email)
            assert found is not None
            new = await sessions.open_session(
                session,
                account=found,
                rehashed=None,
                previous_token=None,
                client_ip="127.0.0.1",
                user_agent="authz-matrix",
            )
        return new.token, new.principal.csrf_token

    async def fresh_account(self, role: str) -> StaffAccount:
        team = self.team_ids.get(role)
        account: StaffAccount = await self.make_staff(STAFF_ROLE[role], team_id=team)
        return account

    async def headers(self, role: str, *, fresh: bool = False) -> dict[str, str]:
        """The credentials of ``role``; ``fresh`` for a new account (or visitor) of that role,
        for requests that end or change the caller's own session."""
        if role in STAFF_ROLE:
            if fresh:
                cookie, csrf = await self.mint_session(await self.fresh_account(role))
            else:
                cookie, csrf = self.staff_sessions[role]
            return {"Cookie": f"livedesk_session={cookie}", "X-CSRF-Token": csrf}
        if role in VISITORS:
            token = (await self.visitor())["token"] if fresh else self.tokens[role]
            return {"Authorization": f"Bearer {token}"}
        if role == INTEGRATION:
            return {"Authorization": f"Bearer {self.integration_key}"}
        return {}

    async def visitor(self) -> dict[str, Any]:
        async with self.http.post(self.url + "/api/v1/visitors", json={}) as response:
            assert response.status == 201, await response.text()
            result: dict[str, Any] = await response.json()
            return result

    async def new_shopper(self) -> uuid.UUID:
        row = Shopper(display_name=f"matrix-{uuid.uuid4().hex[:6]}")
        async with self.db.transaction() as session:
            session.add(row)
        return row.id

    async def new_team(self) -> uuid.UUID:
        row = Team(name=f"matrix-{uuid.uuid4().hex[:10]}")
        async with self.db.transaction() as session:
            session.add(row)
        return row.id


@pytest.fixture
async def world(live: Any, make_staff: Any, db: Database) -> AsyncIterator[World]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        teams = {"a": Team(name="Team A"), "b": Team(name="Team B")}
        async with db.transaction() as session:
            session.add_all(teams.values())
        accounts = {
            ADVISOR: await make_staff(Role.ADVISOR, team_id=teams["a"].id),
            OTHER_ADVISOR: await make_staff(Role.ADVISOR, team_id=teams["b"].id),
            SUPERVISOR: await make_staff(Role.SUPERVISOR, team_id=teams["a"].id),
            ADMIN: await make_staff(Role.ADMIN),
        }
        # Only the other advisor answers offers while the world is built.
        console = await live.staff(accounts[ADVISOR])
        await console.wait_for("presence.changed", lambda p: p["status"] == "available")
        shopper_visit = await live.visitor()
        other_visit = await live.visitor()
        shopper = await live.shopper(shopper_visit["token"])
        joined = await shopper.ok("queue.join", {"kind": "chat"})
        cid = joined["id"]
        await console.wait_for("offer.new", lambda o: o["id"] == cid)
        await console.ok("offer.accept", {"consultation_id": cid})
        form = aiohttp.FormData()
        form.add_field("file", png(), filename="photo.png", content_type="image/png")
        async with http.post(
            f"{live.url}/api/v1/consultations/{cid}/files",
            data=form,
            headers={"Authorization": f"Bearer {shopper_visit['token']}"},
        ) as response:
            assert response.status == 201, await response.text()
            file_id = (await response.json())["id"]
        w = World(
            url=live.url,
            db=db,
            make_staff=make_staff,
            http=http,
            accounts=accounts,
            team_ids={ADVISOR: teams["a"].id, OTHER_ADVISOR: teams["b"].id, SUPERVISOR: teams["a"].id},
            tokens={SHOPPER: shopper_visit["token"], OTHER_SHOPPER: other_visit["token"]},
            shopper_id=shopper_visit["shopper_id"],
            consultation_id=cid,
            file_id=file_id,
        )
        for role, account in accounts.items():
            w.staff_sessions[role] = await w.mint_session(account)
        async with db.transaction() as session:
            integration = await keys.create_integration(session, "Matrix shop", actor_staff_id=None)
            _, w.integration_key = await keys.create_key(
                session, integration.id, "matrix", actor_staff_id=None
            )
        # The advisor's public photo (the photo route is public for nominable advisors).
        admin_headers = await w.headers(ADMIN)
        form = aiohttp.FormData()
        form.add_field("file", png(), filename="me.png", content_type="image/png")
        async with http.post(
            f"{live.url}/api/v1/staff/{accounts[ADVISOR].id}/photo", data=form, headers=admin_headers
        ) as response:
            assert response.status == 200, await response.text()
        await shopper.close()
        await console.close()
        yield w


# --- REST rows --------------------------------------------------------------------------------


@dataclass
class Req:
    path: str
    json: Any = None
    form: aiohttp.FormData | None = None


Builder = Callable[[World, str], Awaitable[Req]]


@dataclass(frozen=True)
class Route:
    allowed: frozenset[str]
    build: Builder | None = None
    # Use a new account/visitor of the role: the request ends or changes its own session.
    fresh: bool = False
    # Denied callers may get 404 (the resource is hidden from them) instead of 401/403.
    hides: bool = False
    # The row checks the gate only: allowed roles get past authentication and the role check
    # (no 401/403, no 5xx) but the request may still be refused for its content or a made-up
    # id (404/409/422). Rows for the newer capabilities start like this; give them a request
    # builder that succeeds to make them full rows.
    authorised_only: bool = False
    # FINDING (reported): the handler reads the body or query before it knows who is asking,
    # so a caller who will be refused may first hear 400/422 about the request. The project's
    # rule (``guarded``) is to refuse first; until these routes follow it, 400/422 count as
    # a refusal here too — never as access.
    parses_before_auth: bool = False
    why: str = ""


def _fill(template: str, w: World, **extra: Any) -> str:
    values = {
        "shopper_id": w.shopper_id,
        "staff_id": str(w.accounts[ADVISOR].id),
        "consultation_id": w.consultation_id,
        "file_id": w.file_id,
        "version": "1",
        **{k: str(v) for k, v in extra.items()},
    }
    # Any other parameter: a well-formed id of nothing (gate-only rows).
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    values.update({name: str(uuid.uuid4()) for name in names if name not in values})
    return template.format(**values)


def at(path: str, body: Any = None) -> Builder:
    async def build(w: World, role: str) -> Req:
        return Req(_fill(path, w), json=body)

    return build


def _photo_form() -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", png(), filename="photo.png", content_type="image/png")
    return form


async def _login(w: World, role: str) -> Req:
    account = await w.make_staff(Role.ADVISOR)
    return Req("/api/v1/auth/login", json={"email": account.email, "password": TEST_PASSWORD})


async def _password(w: World, role: str) -> Req:
    return Req(
        "/api/v1/auth/me/password",
        json={"current_password": TEST_PASSWORD, "new_password": "a brand new passphrase"},
    )


async def _create_staff(w: World, role: str) -> Req:
    email = f"new-{uuid.uuid4().hex[:8]}@example.test"
    return Req(
        "/api/v1/staff",
        json={"email": email, "password": "long enough password", "role": "advisor", "display_name": "New"},
    )


def _on_fresh_staff(path: str, **body: Any) -> Builder:
    async def build(w: World, role: str) -> Req:
        target = await w.make_staff(Role.ADVISOR)
        return Req(_fill(path, w, staff_id=target.id), json=body or None)

    return build


async def _photo_upload(w: World, role: str) -> Req:
    target = await w.make_staff(Role.ADVISOR)
    return Req(f"/api/v1/staff/{target.id}/photo", form=_photo_form())


async def _create_team(w: World, role: str) -> Req:
    return Req("/api/v1/teams", json={"name": f"team-{uuid.uuid4().hex[:10]}"})


def _on_fresh_team(**body: Any) -> Builder:
    async def build(w: World, role: str) -> Req:
        return Req(f"/api/v1/teams/{await w.new_team()}", json=body or None)

    return build


async def _merge(w: World, role: str) -> Req:
    keep, gone = await w.new_shopper(), await w.new_shopper()
    return Req(f"/api/v1/shoppers/{keep}/merge", json={"merge_id": str(gone)})


async def _upload(w: World, role: str) -> Req:
    return Req(_fill("/api/v1/consultations/{consultation_id}/files", w), form=_photo_form())


async def _resolve(w: World, role: str) -> Req:
    return Req("/api/v1/shoppers/resolve", json={"email": f"r-{uuid.uuid4().hex[:8]}@example.com"})


PAGE = Route(EVERYONE, why="browser pages and their files are public")


def gate(allowed: frozenset[str], why: str = "", hides: bool = False, parses_first: bool = False) -> Route:
    """A gate-only row (see ``Route.authorised_only``): path parameters from the world or
    made-up ids, no body."""
    return Route(allowed, authorised_only=True, hides=hides, parses_before_auth=parses_first, why=why)


ADVISOR_AND_READERS = frozenset({ADVISOR}) | READERS
VISITORS_AND_STAFF = VISITORS | STAFF
PUBLIC_LINK = "public: the booking or survey link's token is the credential"

ROUTES: dict[tuple[str, str], Route] = {
    # system
    ("GET", "/healthz"): Route(EVERYONE, at("/healthz")),
    ("GET", "/readyz"): Route(EVERYONE, at("/readyz")),
    ("GET", "/api/openapi.json"): Route(EVERYONE, at("/api/openapi.json")),
    # visitors and calls
    ("POST", "/api/v1/visitors"): Route(EVERYONE, at("/api/v1/visitors", {}), why="anyone may start a visit"),
    ("GET", "/api/v1/system/mail"): gate(ONLY_ADMIN),
    ("POST", "/api/v1/visitors/email-code"): gate(
        EVERYONE, "a visitor token (checked in the route); the address's daily mail budget"
    ),
    ("POST", "/api/v1/visitors/email-code/check"): gate(
        EVERYONE, "a visitor token (checked in the route): only the visit that asked may use the code"
    ),
    ("GET", "/api/v1/ice-servers"): Route(STAFF | VISITORS, at("/api/v1/ice-servers")),
    # staff sign-in
    ("POST", "/api/v1/auth/login"): Route(EVERYONE, _login, fresh=True, why="the password is the credential"),
    ("POST", "/api/v1/auth/logout"): Route(EVERYONE, at("/api/v1/auth/logout"), fresh=True),
    ("GET", "/api/v1/auth/me"): Route(STAFF, at("/api/v1/auth/me")),
    ("PATCH", "/api/v1/auth/me/password"): Route(STAFF, _password, fresh=True),
    # staff administration
    ("GET", "/api/v1/staff"): Route(READERS, at("/api/v1/staff")),
    ("POST", "/api/v1/staff"): Route(ONLY_ADMIN, _create_staff),
    ("GET", "/api/v1/staff/{staff_id}"): Route(READERS, at("/api/v1/staff/{staff_id}")),
    ("PATCH", "/api/v1/staff/{staff_id}"): Route(
        ONLY_ADMIN, _on_fresh_staff("/api/v1/staff/{staff_id}", display_name="Renamed")
    ),
    ("POST", "/api/v1/staff/{staff_id}/disable"): Route(
        ONLY_ADMIN, _on_fresh_staff("/api/v1/staff/{staff_id}/disable")
    ),
    ("POST", "/api/v1/staff/{staff_id}/photo"): Route(ONLY_ADMIN, _photo_upload),
    ("GET", "/api/v1/staff/{staff_id}/photo"): Route(
        EVERYONE, at("/api/v1/staff/{staff_id}/photo"), why="a nominable advisor's photo is public"
    ),
    ("GET", "/api/v1/teams"): Route(READERS, at("/api/v1/teams")),
    ("POST", "/api/v1/teams"): Route(ONLY_ADMIN, _create_team),
    ("PATCH", "/api/v1/teams/{team_id}"): Route(ONLY_ADMIN, _on_fresh_team(description="changed")),
    ("DELETE", "/api/v1/teams/{team_id}"): Route(ONLY_ADMIN, _on_fresh_team()),
    ("GET", "/api/v1/advisors"): Route(EVERYONE, at("/api/v1/advisors"), why="the shopper picks an advisor"),
    # customers: every staff member serves any shopper; merging is a supervisor's decision
    ("POST", "/api/v1/shoppers"): Route(STAFF, at("/api/v1/shoppers", {"display_name": "Walk-in"})),
    ("POST", "/api/v1/shoppers/resolve"): Route(STAFF, _resolve),
    ("GET", "/api/v1/shoppers/{shopper_id}"): Route(STAFF, at("/api/v1/shoppers/{shopper_id}")),
    ("PATCH", "/api/v1/shoppers/{shopper_id}"): Route(
        STAFF, at("/api/v1/shoppers/{shopper_id}", {"notes": "n"})
    ),
    ("POST", "/api/v1/shoppers/{shopper_id}/merge"): Route(READERS, _merge),
    ("GET", "/api/v1/shoppers/{shopper_id}/timeline"): Route(
        STAFF, at("/api/v1/shoppers/{shopper_id}/timeline")
    ),
    # chat files: the parties; supervisors and admins read (audited)
    ("POST", "/api/v1/consultations/{consultation_id}/files"): Route(PARTIES, _upload, hides=True),
    ("GET", "/api/v1/files/{file_id}"): Route(PARTIES | READERS, at("/api/v1/files/{file_id}"), hides=True),
    # supervision
    ("GET", "/api/v1/supervision/board"): Route(READERS, at("/api/v1/supervision/board")),
    ("GET", "/api/v1/supervision/figures"): Route(READERS, at("/api/v1/supervision/figures")),
    ("GET", "/metrics"): Route(
        EVERYONE, at("/metrics"), why="scrapers by address (loopback by default) or LIVEDESK_METRICS_TOKEN"
    ),
    # --- rows added for the capabilities built alongside (gate-only unless a builder says) ---
    # booking: shoppers book without an account; staff manage types and calendars
    ("GET", "/api/v1/booking/types"): gate(EVERYONE, "public"),
    ("GET", "/api/v1/booking/types/{type_id}/advisors"): gate(EVERYONE, "public"),
    ("GET", "/api/v1/booking/types/{type_id}/survey"): gate(EVERYONE, "public"),
    ("GET", "/api/v1/booking/slots"): gate(EVERYONE, "public"),
    ("POST", "/api/v1/bookings"): gate(EVERYONE, "public, rate-limited per address"),
    ("GET", "/api/v1/bookings/{token}"): gate(EVERYONE, PUBLIC_LINK),
    ("GET", "/api/v1/bookings/{token}/calendar.ics"): gate(EVERYONE, PUBLIC_LINK),
    ("POST", "/api/v1/bookings/cancel"): gate(EVERYONE, PUBLIC_LINK + " (in the body)"),
    ("POST", "/api/v1/bookings/join"): gate(EVERYONE, PUBLIC_LINK + " (in the body)"),
    ("POST", "/api/v1/bookings/payment"): gate(EVERYONE, PUBLIC_LINK + " (in the body)"),
    ("POST", "/api/v1/bookings/payment/sandbox"): gate(EVERYONE, PUBLIC_LINK + " (in the body)"),
    ("POST", "/api/v1/bookings/reschedule"): gate(EVERYONE, PUBLIC_LINK + " (in the body)"),
    ("POST", "/api/v1/bookings/confirm"): gate(
        EVERYONE, "public: the mailed confirm link's token (single-use) is the credential"
    ),
    ("GET", "/api/v1/consultation-types"): gate(READERS),
    ("POST", "/api/v1/consultation-types"): gate(ONLY_ADMIN),
    ("PATCH", "/api/v1/consultation-types/{type_id}"): gate(ONLY_ADMIN),
    # An advisor sees and sets their own hours and calendar; supervisors and admins anyone's.
    ("GET", "/api/v1/advisors/{staff_id}/availability"): gate(ADVISOR_AND_READERS, hides=True),
    ("PUT", "/api/v1/advisors/{staff_id}/availability"): gate(
        ADVISOR_AND_READERS, hides=True, parses_first=True
    ),
    ("GET", "/api/v1/advisors/{staff_id}/bookings"): gate(ADVISOR_AND_READERS, hides=True, parses_first=True),
    ("POST", "/api/v1/advisors/{staff_id}/bookings/{booking_id}/cancel"): gate(
        ADVISOR_AND_READERS, hides=True, parses_first=True
    ),
    # payments: staff build requests in a consultation, its shopper pays, overseers refund
    ("GET", "/api/v1/consultations/{consultation_id}/purchasables"): gate(ADVISOR_AND_READERS, hides=True),
    ("POST", "/api/v1/consultations/{consultation_id}/payment-requests"): gate(
        ADVISOR_AND_READERS, hides=True, parses_first=True
    ),
    ("GET", "/api/v1/consultations/{consultation_id}/payment-requests"): gate(PARTIES | READERS, hides=True),
    ("GET", "/api/v1/payment-requests/{request_id}"): gate(VISITORS_AND_STAFF, hides=True),
    ("POST", "/api/v1/payment-requests/{request_id}/checkout"): gate(VISITORS_AND_STAFF, hides=True),
    ("POST", "/api/v1/payment-requests/{request_id}/sandbox"): gate(
        VISITORS_AND_STAFF, hides=True, parses_first=True
    ),
    ("POST", "/api/v1/payment-requests/{request_id}/refunds"): gate(READERS),
    ("GET", "/api/v1/payment-requests"): gate(READERS),
    ("GET", "/api/v1/payments/revenue"): gate(READERS),
    ("POST", "/api/v1/payments/stripe/webhook"): gate(EVERYONE, "Stripe's signature is the credential"),
    # catalogue
    ("GET", "/api/v1/products"): gate(STAFF),
    ("GET", "/api/v1/products/{product_id}"): gate(STAFF),
    ("POST", "/api/v1/products"): gate(ONLY_ADMIN),
    ("PATCH", "/api/v1/products/{product_id}"): gate(ONLY_ADMIN),
    ("POST", "/api/v1/products/import"): gate(ONLY_ADMIN),
    # recordings: who may see the shopper's history, every read audited
    ("GET", "/api/v1/shoppers/{shopper_id}/recordings"): gate(ADVISOR_AND_READERS, hides=True),
    ("GET", "/api/v1/recordings/{recording_id}"): gate(ADVISOR_AND_READERS, hides=True),
    ("GET", "/api/v1/recordings/{recording_id}/media"): gate(ADVISOR_AND_READERS, hides=True),
    # surveys
    ("GET", "/api/v1/surveys"): gate(READERS),
    ("POST", "/api/v1/surveys"): gate(ONLY_ADMIN),
    ("GET", "/api/v1/surveys/{survey_id}"): gate(READERS),
    ("PUT", "/api/v1/surveys/{survey_id}"): gate(ONLY_ADMIN),
    ("POST", "/api/v1/surveys/{survey_id}/archive"): gate(ONLY_ADMIN),
    ("GET", "/api/v1/surveys/{survey_id}/versions/{version}"): gate(READERS),
    ("GET", "/api/v1/surveys/{survey_id}/responses"): gate(READERS),
    ("GET", "/api/v1/survey-assignments"): gate(READERS),
    ("PUT", "/api/v1/survey-assignments/{target}"): gate(ONLY_ADMIN),
    ("GET", "/api/v1/satisfaction/figures"): gate(READERS),
    ("GET", "/api/v1/intake-survey"): gate(EVERYONE, "public: the widget asks it before queueing"),
    ("POST", "/api/v1/intake-responses"): gate(VISITORS, "the visitor token", parses_first=True),
    ("POST", "/api/v1/consultations/{consultation_id}/satisfaction"): gate(
        frozenset({SHOPPER}), hides=True, parses_first=True
    ),
    ("GET", "/api/v1/consultations/{consultation_id}/satisfaction"): gate(PARTIES | READERS, hides=True),
    ("POST", "/api/v1/satisfaction/link"): gate(EVERYONE, PUBLIC_LINK),
    ("POST", "/api/v1/satisfaction/link/info"): gate(EVERYONE, PUBLIC_LINK),
    # customer history and privacy
    ("GET", "/api/v1/customers/search"): gate(STAFF),
    ("GET", "/api/v1/shoppers/{shopper_id}/recommendations"): gate(STAFF),
    ("POST", "/api/v1/shoppers/{shopper_id}/notes"): gate(STAFF),
    ("GET", "/api/v1/shoppers/{shopper_id}/timeline/{event_id}"): gate(STAFF),
    ("GET", "/api/v1/shoppers/{shopper_id}/export"): gate(READERS),
    ("POST", "/api/v1/shoppers/{shopper_id}/erase"): gate(ONLY_ADMIN),
    ("GET", "/api/v1/audit"): Route(ONLY_ADMIN, at("/api/v1/audit"), why="who did what: admins only"),
    # integrations: admins manage them; the shop API takes integration keys only
    ("GET", "/api/v1/integrations"): gate(ONLY_ADMIN),
    ("POST", "/api/v1/integrations"): gate(ONLY_ADMIN),
    ("POST", "/api/v1/integrations/{integration_id}/keys"): gate(ONLY_ADMIN),
    ("POST", "/api/v1/integrations/{integration_id}/keys/{key_id}/revoke"): gate(ONLY_ADMIN),
    ("GET", "/api/v1/webhooks/endpoints"): gate(ONLY_ADMIN),
    ("POST", "/api/v1/webhooks/endpoints"): gate(ONLY_ADMIN),
    ("PATCH", "/api/v1/webhooks/endpoints/{endpoint_id}"): gate(ONLY_ADMIN),
    ("POST", "/api/v1/webhooks/endpoints/{endpoint_id}/rotate-secret"): gate(ONLY_ADMIN),
    ("POST", "/api/v1/webhooks/endpoints/{endpoint_id}/test"): gate(ONLY_ADMIN),
    ("GET", "/api/v1/webhooks/deliveries"): gate(ONLY_ADMIN),
    ("GET", "/api/v1/webhooks/deliveries/{delivery_id}"): gate(ONLY_ADMIN),
    ("POST", "/api/v1/webhooks/deliveries/{delivery_id}/retry"): gate(ONLY_ADMIN),
    ("GET", "/api/v1/imports"): gate(ONLY_ADMIN),
    ("POST", "/api/v1/imports"): gate(ONLY_ADMIN),
    ("GET", "/api/v1/imports/{import_id}"): gate(ONLY_ADMIN),
    ("POST", "/api/v1/imports/{import_id}/resume"): gate(ONLY_ADMIN),
    ("PUT", "/api/v1/shop/customers/{shop_customer_id}"): gate(frozenset({INTEGRATION})),
    ("PUT", "/api/v1/shop/orders/{external_id}"): gate(frozenset({INTEGRATION})),
    ("PUT", "/api/v1/shop/events/{external_id}"): gate(frozenset({INTEGRATION})),
    # pages
    ("GET", "/"): Route(EVERYONE, at("/")),
    ("GET", "/demo/shop"): Route(EVERYONE, at("/demo/shop")),
    ("GET", "/demo/catalogue.json"): Route(EVERYONE, at("/demo/catalogue.json")),
    ("GET", "/favicon.svg"): Route(EVERYONE, at("/favicon.svg")),
    ("GET", "/widget.js"): Route(EVERYONE, at("/widget.js")),
    **{
        ("GET", page): Route(EVERYONE, at(page), why="the page; its API calls are checked")
        for page in ("/widget/", "/call/", "/staff/", "/supervisor/", "/admin/", "/booking/", "/history/")
    },
    **{
        ("GET", page): Route(EVERYONE, at(page), why="redirect to the page with a slash")
        for page in ("/widget", "/call", "/staff", "/supervisor", "/admin", "/booking", "/history")
    },
    # every page file at its own address, served in the page shell
    **{("GET", f"/{page}"): Route(EVERYONE, at(f"/{page}")) for page in page_files(WEB_DIR) if "/" in page},
    # static folders of web/ (a file of each is fetched)
    ("GET", "/admin/*"): Route(EVERYONE, at("/admin/index.html")),
    ("GET", "/call/*"): Route(EVERYONE, at("/call/index.html")),
    ("GET", "/demo/*"): Route(EVERYONE, at("/demo/shop.html")),
    ("GET", "/home/*"): Route(EVERYONE, at("/home/home.js")),
    ("GET", "/shared/*"): Route(EVERYONE, at("/shared/i18n.js")),
    ("GET", "/staff/*"): Route(EVERYONE, at("/staff/index.html")),
    ("GET", "/vendor/*"): Route(EVERYONE, at("/vendor/axe.min.js")),
    ("GET", "/widget/*"): Route(EVERYONE, at("/widget/index.html")),
    ("GET", "/surveys/csat"): Route(EVERYONE, at("/surveys/csat")),
    **{
        ("GET", f"/{folder}/*"): gate(EVERYONE, "static files of a page")
        for folder in (
            "booking",
            "history",
            "monitoring",
            "payments",
            "recording",
            "staffnav",
            "supervisor",
            "surveys",
        )
    },
}
# The Socket.IO transport: its events have their own matrix below.
TRANSPORT = "/socket.io/"


def route_keys(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route in the app's router; HEAD rides with GET, static
    folders are ``/<folder>/*``."""
    keys: set[tuple[str, str]] = set()
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None
        info = resource.get_info()
        path = f"{info['prefix']}/*" if "prefix" in info else info.get("path") or info["formatter"]
        if path == TRANSPORT or route.method == "HEAD":
            continue
        keys.add((route.method, path))
    return keys


async def test_every_route_has_a_row(app: web.Application, client: Any) -> None:
    present = route_keys(app)
    missing = sorted(present - ROUTES.keys())
    stale = sorted(ROUTES.keys() - present)
    assert not missing, f"routes without an authorisation matrix row: {missing}"
    assert not stale, f"matrix rows for routes that no longer exist: {stale}"


async def _send(w: World, method: str, req: Req, headers: dict[str, str]) -> tuple[int, str, Any]:
    async with w.http.request(
        method, w.url + req.path, json=req.json, data=req.form, headers=headers, allow_redirects=False
    ) as response:
        text = (await response.read()).decode(errors="replace")
        body: Any = None
        if response.content_type == "application/json":
            body = await response.json()
        return response.status, text, body


async def test_rest_matrix(world: World) -> None:
    failures: list[str] = []
    for (method, template), row in ROUTES.items():
        build = row.build or at(template)
        for role in ROLES:
            req = await build(world, role)
            headers = await world.headers(role, fresh=row.fresh)
            status, text, body = await _send(world, method, req, headers)
            where = f"{method} {template} as {role}: {status} {text[:200]}"
            if status >= 500:
                failures.append(f"server error — {where}")
            elif role in row.allowed:
                passed = status not in (401, 403) if row.authorised_only else 200 <= status < 400
                if not passed:
                    failures.append(f"should be allowed — {where}")
            else:
                denials = {401, 403, 404} if row.hides or role != ANON else {401, 404}
                if row.parses_before_auth:
                    denials |= {400, 422}
                if status not in denials:
                    failures.append(f"should be denied — {where}")
                elif not (isinstance(body, dict) and {"code", "message"} <= set(body.get("error", {}))):
                    failures.append(f"denial without the error shape — {where}")
    assert not failures, "\n".join(failures)


# --- Socket.IO rows ---------------------------------------------------------------------------

Payload = Callable[[World, str], dict[str, Any] | None]


@dataclass(frozen=True)
class Event:
    allowed: frozenset[str]
    payload: Payload
    # Codes an allowed caller may get because of the consultation's state (authorised, but
    # "not now"): never one of DENIAL_CODES.
    state_codes: frozenset[str] = frozenset()
    # Checks an allowed caller's answer (what it may see).
    check: Callable[[World, str, Any], None] | None = None
    # Gate only: an allowed caller may get any answer but a denial (made-up ids, state).
    authorised_only: bool = False
    why: str = ""


def ref(**extra: Any) -> Payload:
    def build(w: World, role: str) -> dict[str, Any]:
        return {"consultation_id": w.consultation_id, **extra}

    return build


def _none(w: World, role: str) -> None:
    return None


def _chat(w: World, role: str) -> dict[str, Any]:
    return {"consultation_id": w.consultation_id, "client_id": f"matrix-{uuid.uuid4().hex}", "body": "hi"}


def _only_own(w: World, role: str, data: Any) -> None:
    ids = {c["id"] for c in data}
    mine = role in (SHOPPER, ADVISOR)
    assert (w.consultation_id in ids) == mine, (role, data)


EVERY_SOCKET = STAFF | VISITORS
# Supervisors and admins may read any consultation through these events but act on none.
PARTIES_AND_READERS = PARTIES | READERS

SDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\n"


def gate_event(allowed: frozenset[str], payload: Payload, why: str = "") -> Event:
    return Event(allowed, payload, authorised_only=True, why=why)


def made_up(**fields: Any) -> Payload:
    def build(w: World, role: str) -> dict[str, Any]:
        return {key: (str(uuid.uuid4()) if value is uuid.UUID else value) for key, value in fields.items()}

    return build


# Row order is the order they run in: the ones that end the consultation come last.
EVENTS: dict[str, Event] = {
    # --- rows added for the capabilities built alongside (gate-only) ---
    "recording.current": gate_event(PARTIES | READERS, ref()),
    "recording.consent": gate_event(VISITORS, made_up(recording_id=uuid.UUID, accept=True)),
    "recording.start": gate_event(frozenset({ADVISOR}), ref()),
    "recording.stop": gate_event(STAFF, made_up(recording_id=uuid.UUID)),
    "leg.offer": gate_event(EVERY_SOCKET, made_up(recording_id=uuid.UUID, type="offer", sdp=SDP)),
    "monitor.start": gate_event(READERS, ref(type="offer", sdp=SDP)),
    "monitor.stop": gate_event(READERS, made_up(monitor_id=uuid.UUID)),
    "monitor.mode": gate_event(READERS, made_up(monitor_id=uuid.UUID, mode="listen")),
    "monitor.talk": gate_event(READERS, made_up(monitor_id=uuid.UUID, to="advisor", type="hangup")),
    "monitor.leg_offer": gate_event(PARTIES, ref(type="offer", sdp=SDP)),
    "monitor.talk_answer": gate_event(PARTIES, ref(talk_id=str(uuid.uuid4()), type="answer", sdp=SDP)),
    "monitor.current": gate_event(PARTIES, ref()),
    "leg.placement": gate_event(PARTIES, ref()),
    # --- the real-time core ---
    "presence.list": Event(STAFF, _none),
    "presence.set": Event(STAFF, lambda w, r: {"status": "available"}),
    "board.snapshot": Event(READERS, _none),
    "board.figures": Event(READERS, _none),
    "consultation.current": Event(EVERY_SOCKET, _none, check=_only_own, why="each sees their own"),
    "consultation.get": Event(PARTIES_AND_READERS, ref()),
    "chat.sync": Event(PARTIES_AND_READERS, ref(after_seq=0)),
    "chat.send": Event(PARTIES, _chat),
    # NOTE: typing passes the read-only party check, so a supervisor or admin may send it
    # (the parties then see "typing…" marked as the advisor's). Reported; encoded as it is.
    "chat.typing": Event(PARTIES_AND_READERS, ref(typing=True)),
    "chat.read": Event(PARTIES, ref(seq=1)),
    "call.signal": Event(PARTIES, ref(type="candidate", data={"candidate": "c"})),
    # The consultation is already active: its advisor is authorised, but the offer is gone.
    "offer.accept": Event(frozenset({ADVISOR}), ref(), state_codes=frozenset({"offer_gone"})),
    "offer.decline": Event(frozenset({ADVISOR}), ref(), state_codes=frozenset({"offer_gone"})),
    "queue.update": Event(
        frozenset({SHOPPER}), ref(wait_for_nominated=False), state_codes=frozenset({"not_waiting"})
    ),
    "queue.join": Event(VISITORS, lambda w, r: {"kind": "chat"}),
    "call.escalate": Event(PARTIES, ref(kind="video"), state_codes=frozenset({"conflict"})),
    "queue.leave": Event(frozenset({SHOPPER}), ref(), state_codes=frozenset({"not_waiting"})),
    # The shopper ends it first; the advisor then finds it in wrap-up.
    "consultation.end": Event(PARTIES, ref(), state_codes=frozenset({"not_active"})),
    "consultation.close": Event(frozenset({ADVISOR}), ref(), state_codes=frozenset({"conflict"})),
}


def registered_events() -> set[str]:
    return set(shopper_events()) | set(staff_events())


def test_every_event_has_a_row() -> None:
    present = registered_events()
    missing = sorted(present - EVENTS.keys())
    stale = sorted(EVENTS.keys() - present)
    assert not missing, f"Socket.IO events without an authorisation matrix row: {missing}"
    assert not stale, f"matrix rows for events that no longer exist: {stale}"


async def _socket(w: World, role: str) -> SocketClient:
    if role in VISITORS:
        sock = SocketClient("/shopper")
        await sock.connect(w.url, auth={"token": w.tokens[role]})
    else:
        sock = SocketClient("/staff")
        cookie, _ = w.staff_sessions[role]
        await sock.connect(w.url, headers={"Cookie": f"livedesk_session={cookie}"})
    return sock


async def _refused(w: World, namespace: str, **kwargs: Any) -> bool:
    sock = SocketClient(namespace)
    try:
        await sock.connect(w.url, **kwargs)
    except socketio.exceptions.ConnectionError:
        return True
    await sock.close()
    return False


async def test_sockets_refuse_anonymous_and_integration_keys(world: World) -> None:
    for role in (ANON, INTEGRATION):
        headers = await world.headers(role)
        token = headers.get("Authorization", "").removeprefix("Bearer ") or None
        assert await _refused(world, "/shopper", auth={"token": token} if token else None), role
        assert await _refused(world, "/staff", headers=headers), role
    # A visitor token is no staff credential, and a staff cookie no visitor token.
    assert await _refused(world, "/staff", headers={"Authorization": f"Bearer {world.tokens[SHOPPER]}"})
    cookie, _ = world.staff_sessions[ADVISOR]
    assert await _refused(world, "/shopper", headers={"Cookie": f"livedesk_session={cookie}"})


async def test_event_matrix(world: World) -> None:
    connected = [role for role in ROLES if role in EVERY_SOCKET]
    sockets = {role: await _socket(world, role) for role in connected}
    failures: list[str] = []
    try:
        for name, row in EVENTS.items():
            for role in connected:
                ack = await sockets[role].call(name, row.payload(world, role))
                where = f"{name} as {role}: {ack}"
                if not isinstance(ack, dict) or not isinstance(ack.get("ok"), bool):
                    failures.append(f"no ack shape — {where}")
                    continue
                code = None if ack["ok"] else ack["error"]["code"]
                if code == "internal":
                    failures.append(f"server error — {where}")
                elif role in row.allowed:
                    refused = code in DENIAL_CODES if row.authorised_only else code not in row.state_codes
                    if code is not None and (code in DENIAL_CODES or refused):
                        failures.append(f"should be allowed — {where}")
                    elif code is None and row.check is not None:
                        try:
                            row.check(world, role, ack["data"])
                        except AssertionError as exc:
                            failures.append(f"saw what it should not — {where} ({exc})")
                elif code not in DENIAL_CODES:
                    failures.append(f"should be denied — {where}")
    finally:
        for sock in sockets.values():
            await sock.close()
    assert not failures, "\n".join(failures)
