"""Identity attacks, as an outside tester ran them: typing a known customer's contact details
into the public forms must never open, change or reveal their profile, and every token reaches
only what it was issued for.

Each attack asserts the denial *and* that nothing changed on the victim's profile. The other
attacks of the identity issue live beside their capability: shop data (test_identity_shop),
recordings by relationship (test_recording_reach), the anonymise marker scan
(test_privacy_marker) and forged product cards (test_product_cards).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update

from livedesk.booking.jobs import JOBS
from livedesk.customers import service as customers
from livedesk.customers.merge import merge_shoppers
from livedesk.customers.schemas import ShopperCreate
from livedesk.identity import TOKENS
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import (
    Booking,
    BookingStatus,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    EmailVerification,
    Role,
    Shopper,
    ShopperIdentity,
    ShopperMerge,
    TimelineEvent,
)
from livedesk.settings import Settings
from tests.conftest import SmtpInbox, SocketClient, wait_until
from tests.integration.test_booking_api import booking_body, confirm, make_type, next_slot, set_hours
from tests.integration.test_chat_files import form, png

Client = TestClient[web.Request, web.Application]

VICTIM_EMAIL = "hana.victim@example.jp"
VICTIM_PHONE = "+819011112222"


@pytest.fixture
def settings(settings: Settings, smtp_inbox: SmtpInbox) -> Settings:
    return settings.model_copy(
        update={
            "booking_rate_limit": "1000/minute",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_inbox.port,
            "public_url": "https://desk.hanami.example",
            "booking_job_seconds": 0.05,
            "booking_join_early_minutes": 30,
        }
    )


@pytest.fixture
async def world(client: Client, make_staff: Any) -> dict[str, Any]:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR, timezone="Asia/Tokyo")
    ctype = await make_type(client, admin)
    await set_hours(client, advisor)
    return {"admin": admin, "advisor": advisor, "type": ctype}


@dataclass(frozen=True)
class Snapshot:
    name: str
    email: str | None
    phone: str | None
    identities: frozenset[tuple[str, str]]
    timeline: int
    bookings: int
    merged_in: int


async def victim(db: Database) -> uuid.UUID:
    """A known customer with an e-mail, a phone and a history."""
    async with db.transaction() as session:
        view = await customers.create_shopper(
            session,
            ShopperCreate(display_name="花 被害者", email=VICTIM_EMAIL, phone=VICTIM_PHONE, notes="VIP"),
            source="import",
        )
        return view.shopper.id


async def snapshot(db: Database, shopper_id: uuid.UUID) -> Snapshot:
    async with db.read() as session:
        shopper = await session.get(Shopper, shopper_id)
        assert shopper is not None
        identities = (
            await session.execute(
                select(ShopperIdentity.kind, ShopperIdentity.value).where(
                    ShopperIdentity.shopper_id == shopper_id
                )
            )
        ).all()
        timeline = await session.scalar(
            select(func.count()).select_from(TimelineEvent).where(TimelineEvent.shopper_id == shopper_id)
        )
        bookings = await session.scalar(
            select(func.count()).select_from(Booking).where(Booking.shopper_id == shopper_id)
        )
        merged_in = await session.scalar(
            select(func.count()).select_from(ShopperMerge).where(ShopperMerge.survivor_id == shopper_id)
        )
    return Snapshot(
        shopper.display_name,
        shopper.email,
        shopper.phone,
        frozenset((str(k), v) for k, v in identities),
        int(timeline or 0),
        int(bookings or 0),
        int(merged_in or 0),
    )


async def book_as(client: Client, world: dict[str, Any], contact: dict[str, Any], minutes: int = 180) -> Any:
    body = booking_body(world["type"]["id"], next_slot(minutes), world["advisor"].id)
    body["contact"] = contact
    response = await client.post("/api/v1/bookings", json=body)
    assert response.status == 201, await response.text()
    return await response.json()


async def shopper_of(db: Database, booking_id: str) -> uuid.UUID:
    async with db.read() as session:
        booking = await session.get(Booking, uuid.UUID(booking_id))
        assert booking is not None
        return booking.shopper_id


@pytest.mark.parametrize(
    "contact",
    [
        {"name": "Mallory", "email": VICTIM_EMAIL.upper(), "phone": "080-9999-0000"},
        {"name": "Mallory", "email": "mallory@example.org", "phone": "090-1111-2222"},
        {"name": "Mallory", "email": VICTIM_EMAIL, "phone": "090 1111 2222"},
    ],
    ids=["known-email", "known-phone", "both-known"],
)
async def test_booking_with_known_contact_details_reaches_nothing_of_the_victim(
    client: Client, world: dict[str, Any], db: Database, contact: dict[str, Any]
) -> None:
    target = await victim(db)
    before = await snapshot(db, target)
    created = await book_as(client, world, contact)
    booking = created["booking"]
    # What was typed, normalised — never what the profile holds.
    assert booking["status"] == "pending"
    assert booking["contact_email"] == contact["email"].lower()
    assert booking["contact_name"] == "Mallory"
    typed_phone = "+81" + re.sub(r"\D", "", contact["phone"])[1:]
    assert booking["contact_phone"] == typed_phone
    assert "花" not in str(created)
    guest = await shopper_of(db, booking["id"])
    assert guest != target
    async with db.read() as session:
        # The guest holds no identities at all: nothing finds it, it finds nobody.
        held = await session.scalar(
            select(func.count()).select_from(ShopperIdentity).where(ShopperIdentity.shopper_id == guest)
        )
    assert held == 0
    # Joining needs the confirmation only the mailbox can give.
    joined = await client.post("/api/v1/bookings/join", json={"token": created["token"]})
    assert joined.status == 409
    assert (await joined.json())["error"]["code"] == "booking_pending"
    assert await snapshot(db, target) == before


async def test_the_bookers_own_address_proven_never_attaches_the_victims_phone(
    client: Client, world: dict[str, Any], db: Database
) -> None:
    target = await victim(db)
    before = await snapshot(db, target)
    created = await book_as(
        client, world, {"name": "Mallory", "email": "mallory@example.org", "phone": VICTIM_PHONE}
    )
    # Mallory controls her own mailbox: the booking is confirmed and her e-mail proven …
    confirmed = await confirm(client, created)
    assert confirmed["booking"]["status"] == "confirmed"
    guest = await shopper_of(db, created["booking"]["id"])
    assert guest != target
    async with db.read() as session:
        owned = (
            await session.execute(
                select(ShopperIdentity.kind, ShopperIdentity.value).where(ShopperIdentity.shopper_id == guest)
            )
        ).all()
    # … but a phone number is never proven (no SMS), so it never becomes an identity.
    assert [(str(k), v) for k, v in owned] == [("email", "mallory@example.org")]
    assert await snapshot(db, target) == before


async def test_the_victim_confirming_a_strangers_booking_gives_the_stranger_nothing(
    client: Client, world: dict[str, Any], db: Database
) -> None:
    target = await victim(db)
    created = await book_as(client, world, {"name": "Mallory", "email": VICTIM_EMAIL})
    stranger_token = created["token"]
    # The victim opens the mail's link: the booking is theirs now (a proven merge) …
    confirmed = await confirm(client, created)
    assert await shopper_of(db, created["booking"]["id"]) == target
    async with db.read() as session:
        merge = (await session.scalars(select(ShopperMerge).where(ShopperMerge.survivor_id == target))).one()
    assert merge.details["proof"]["kind"] == "email_verified"
    assert merge.details["proof"]["via"] == "booking"
    # … and the stranger's token from the booking form opens nothing any more.
    for method, path, body in (
        ("GET", f"/api/v1/bookings/{stranger_token}", None),
        ("POST", "/api/v1/bookings/join", {"token": stranger_token}),
        ("POST", "/api/v1/bookings/cancel", {"token": stranger_token}),
    ):
        response = await client.request(method, path, json=body)
        assert response.status == 404, (path, await response.text())
        assert (await response.json())["error"]["code"] == "link_replaced"
    # The mailed link (the new token) does.
    assert (await client.get(f"/api/v1/bookings/{confirmed['token']}")).status == 200


async def test_a_confirm_link_works_once_and_not_after_the_hold(
    client: Client, world: dict[str, Any], db: Database
) -> None:
    created = await book_as(client, world, {"name": "Aiko", "email": "aiko.once@example.jp"})
    await confirm(client, created)
    async with db.read() as session:
        verification_id = await session.scalar(
            select(EmailVerification.id).where(
                EmailVerification.booking_id == uuid.UUID(created["booking"]["id"])
            )
        )
    assert verification_id is not None
    token = client.app[JOBS].tokens.verification.issue(verification_id)
    again = await client.post("/api/v1/bookings/confirm", json={"token": token})
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "link_used"

    # A booking nobody confirms is released after its hold, and its link no longer works.
    late = await book_as(client, world, {"name": "Ken", "email": "ken.late@example.jp"}, minutes=300)
    async with db.transaction() as session:
        await session.execute(
            update(Booking)
            .where(Booking.id == uuid.UUID(late["booking"]["id"]))
            .values(pending_until=utcnow() - timedelta(seconds=1))
        )
        await session.execute(
            update(EmailVerification)
            .where(EmailVerification.booking_id == uuid.UUID(late["booking"]["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    # The booking jobs (every 50 ms here) release it.
    async def released_status() -> bool:
        async with db.read() as session:
            row = await session.get(Booking, uuid.UUID(late["booking"]["id"]))
            return row is not None and row.status == BookingStatus.EXPIRED

    await wait_until(released_status)
    async with db.read() as session:
        released = await session.get(Booking, uuid.UUID(late["booking"]["id"]))
        assert released is not None
        late_verification = await session.scalar(
            select(EmailVerification.id).where(EmailVerification.booking_id == released.id)
        )
    assert late_verification is not None
    expired = await client.post(
        "/api/v1/bookings/confirm",
        json={"token": client.app[JOBS].tokens.verification.issue(late_verification)},
    )
    assert expired.status == 409
    assert (await expired.json())["error"]["code"] == "link_expired"
    # Its time is free again.
    body = booking_body(world["type"]["id"], next_slot(5 * 60), world["advisor"].id)
    assert (await client.post("/api/v1/bookings", json=body)).status == 201


async def test_the_booking_form_cannot_mail_a_stranger_at_will(client: Client, world: dict[str, Any]) -> None:
    for hours in range(3, 8):
        await book_as(client, world, {"name": "Spam", "email": "target@example.jp"}, minutes=hours * 60)
    sixth = booking_body(world["type"]["id"], next_slot(9 * 60), world["advisor"].id)
    sixth["contact"] = {"name": "Spam", "email": "Target@Example.jp"}
    refused = await client.post("/api/v1/bookings", json=sixth)
    assert refused.status == 429
    assert (await refused.json())["error"]["code"] == "mail_budget"
    for name in (
        "Win a prize at https://evil.example",
        "Hana\r\nBcc: all@example.jp",
        "see www.evil.example",
    ):
        body = booking_body(world["type"]["id"], next_slot(10 * 60), world["advisor"].id)
        body["contact"] = {"name": name, "email": f"n{uuid.uuid4().hex[:6]}@example.jp"}
        bad = await client.post("/api/v1/bookings", json=body)
        assert bad.status == 422, name
        assert "contact" in (await bad.text())


async def test_join_gives_a_token_for_that_call_only_and_it_does_not_renew(
    client: Client, world: dict[str, Any], db: Database, live: Any
) -> None:
    # Within the join window (30 minutes early here): confirm and join.
    created = await book_as(client, world, {"name": "Aiko", "email": "aiko.join@example.jp"}, minutes=15)
    token = (await confirm(client, created))["token"]
    joined = await (await client.post("/api/v1/bookings/join", json={"token": token})).json()
    assert joined["status"] == "open", joined
    call_token = joined["visitor_token"]
    claims = client.app[TOKENS].verify(call_token)
    assert claims.consultation_id == uuid.UUID(joined["consultation_id"])
    assert claims.expires_at is not None
    booking_end = created["booking"]["ends_at"]
    assert abs(claims.expires_at - (_epoch(booking_end) + 3600)) <= 1
    assert abs(joined["expires_in"] - (claims.expires_at - time.time())) < 5

    # The same shopper has another open consultation the call's token must not reach.
    shopper_id = uuid.UUID(joined["shopper_id"])
    async with db.transaction() as session:
        other = Consultation(
            shopper_id=shopper_id,
            kind=ConsultationKind.CHAT,
            status=ConsultationStatus.QUEUED,
            queued_at=utcnow(),
            extra={},
        )
        session.add(other)
        await session.flush()
        other_id = other.id
    sock = await live.shopper(call_token)
    current = await sock.ok("consultation.current")
    assert [c["id"] for c in current] == [joined["consultation_id"]]
    refused = await sock.call("chat.sync", {"consultation_id": str(other_id), "after_seq": 0})
    assert refused["ok"] is False
    assert refused["error"]["code"] == "not_a_party"
    new_call = await sock.call("queue.join", {"kind": "chat"})
    assert new_call["error"]["code"] == "token_scoped"
    upload = await client.post(
        f"/api/v1/consultations/{other_id}/files",
        data=form(png()),
        headers={"Authorization": f"Bearer {call_token}"},
    )
    assert upload.status == 403
    # Renewing it starts a new guest, never a visitor token for the shopper.
    renewed = await (await client.post("/api/v1/visitors", json={"previous_token": call_token})).json()
    assert renewed["shopper_id"] != str(shopper_id)
    assert client.app[TOKENS].verify(renewed["token"]).consultation_id is None


def _epoch(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso).timestamp())


async def test_a_staff_merge_does_not_hand_the_guests_browser_the_survivor(
    client: Client, db: Database, live: Any, make_staff: Any
) -> None:
    target = await victim(db)
    guest = await live.visitor()
    supervisor = await make_staff(Role.SUPERVISOR)
    async with db.transaction() as session:
        await merge_shoppers(session, target, uuid.UUID(guest["shopper_id"]), actor_staff_id=supervisor.id)
    bearer = {"Authorization": f"Bearer {guest['token']}"}
    # REST: the same rule as the socket (test_realtime_auth): refused, not followed.
    response = await client.get(f"/api/v1/consultations/{uuid.uuid4()}/payment-requests", headers=bearer)
    assert response.status == 401, await response.text()
    assert (await response.json())["error"]["code"] == "token_revoked"
    client_socket = SocketClient("/shopper")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client_socket.connect(live.url, auth={"token": guest["token"]})
    assert "token_revoked" in str(client_socket.received("connect_error"))


async def test_a_cancelled_bookings_link_shows_no_contact_and_does_nothing(
    client: Client, world: dict[str, Any]
) -> None:
    created = await book_as(
        client, world, {"name": "Aiko", "email": "aiko.cancel@example.jp", "phone": "09012345678"}
    )
    token = (await confirm(client, created))["token"]
    cancelled = await client.post("/api/v1/bookings/cancel", json={"token": token, "reason": "ill"})
    assert cancelled.status == 200
    seen = await (await client.get(f"/api/v1/bookings/{token}")).json()
    assert seen["status"] == "cancelled"
    assert (seen["contact_name"], seen["contact_email"], seen["contact_phone"], seen["links"]) == (
        "",
        "",
        None,
        None,
    )
    for path, body in (
        ("/api/v1/bookings/join", {"token": token}),
        ("/api/v1/bookings/cancel", {"token": token}),
        ("/api/v1/bookings/reschedule", {"token": token, "start": next_slot(600).isoformat()}),
    ):
        response = await client.post(path, json=body)
        assert response.status == 409, path


async def test_a_booking_link_expires_days_after_the_booking(
    client: Client, world: dict[str, Any], db: Database
) -> None:
    created = await book_as(client, world, {"name": "Aiko", "email": "aiko.old@example.jp"})
    token = (await confirm(client, created))["token"]
    async with db.transaction() as session:
        long_ago = utcnow() - timedelta(days=8)
        await session.execute(
            update(Booking)
            .where(Booking.id == uuid.UUID(created["booking"]["id"]))
            .values(starts_at=long_ago, ends_at=long_ago + timedelta(minutes=30))
        )
    for response in (
        await client.get(f"/api/v1/bookings/{token}"),
        await client.get(f"/api/v1/bookings/{token}/calendar.ics"),
        await client.post("/api/v1/bookings/join", json={"token": token}),
    ):
        assert response.status == 410
        assert (await response.json())["error"]["code"] == "link_expired"


CODE = re.compile(r"\b(\d{6})\b")


async def test_a_visitor_links_their_history_only_with_the_mailed_code(
    client: Client, db: Database, live: Any, smtp_inbox: SmtpInbox
) -> None:
    target = await victim(db)
    before = await snapshot(db, target)
    stranger = await live.visitor()
    owner = await live.visitor()

    async def ask(visitor: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(
            "/api/v1/visitors/email-code",
            json={"email": VICTIM_EMAIL, "locale": "en"},
            headers={"Authorization": f"Bearer {visitor['token']}"},
        )
        assert response.status == 202, await response.text()
        result: dict[str, Any] = await response.json()
        return result

    asked = await ask(stranger)
    await wait_until(lambda: _mails(smtp_inbox, 1))
    (mail,) = smtp_inbox.parsed()
    assert mail["To"] == VICTIM_EMAIL
    real = CODE.search(next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_content())
    assert real
    # The stranger guesses (never the real code): five wrong tries and the code is spent.
    guess = "000000" if real.group(1) != "000000" else "111111"
    for _ in range(5):
        wrong = await client.post(
            "/api/v1/visitors/email-code/check",
            json={"verification_id": asked["verification_id"], "code": guess},
            headers={"Authorization": f"Bearer {stranger['token']}"},
        )
        assert (await wrong.json())["error"]["code"] == "wrong_code"
    spent = await client.post(
        "/api/v1/visitors/email-code/check",
        json={"verification_id": asked["verification_id"], "code": real.group(1)},
        headers={"Authorization": f"Bearer {stranger['token']}"},
    )
    assert spent.status == 409
    assert (await spent.json())["error"]["code"] == "too_many_tries"
    assert await snapshot(db, target) == before

    # The owner asks; a code sent to one visitor is no use to another.
    mine = await ask(owner)
    await wait_until(lambda: _mails(smtp_inbox, 2))
    code = CODE.search(
        next(p for p in smtp_inbox.parsed()[1].walk() if p.get_content_type() == "text/plain").get_content()
    )
    assert code
    other = await client.post(
        "/api/v1/visitors/email-code/check",
        json={"verification_id": mine["verification_id"], "code": code.group(1)},
        headers={"Authorization": f"Bearer {stranger['token']}"},
    )
    assert other.status == 404
    linked = await client.post(
        "/api/v1/visitors/email-code/check",
        json={"verification_id": mine["verification_id"], "code": code.group(1)},
        headers={"Authorization": f"Bearer {owner['token']}"},
    )
    assert linked.status == 200, await linked.text()
    out = await linked.json()
    assert out["linked"] is True
    assert out["shopper_id"] == str(target)
    sock = await live.shopper(out["token"])
    joined = await sock.ok("queue.join", {"kind": "chat"})
    assert joined["shopper_id"] == str(target)
    async with db.read() as session:
        merge = (await session.scalars(select(ShopperMerge).where(ShopperMerge.survivor_id == target))).one()
    assert merge.details["proof"]["via"] == "code"


async def _mails(inbox: SmtpInbox, n: int) -> bool:
    return len(inbox.messages) >= n
